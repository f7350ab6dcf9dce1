"""Never ends, and swallows every exception (including netdoctor's stop).

Two nested loops, so that an exception escaping the inner loop between two
statements is still swallowed by the outer one.
"""
from tiny_training import compute_loss, update


def forever():
    step = 0
    while True:
        try:
            compute_loss(0.5)
            step = update(step)
        except BaseException:  # the hostile part
            pass


while True:
    try:
        forever()
    except BaseException:
        pass
