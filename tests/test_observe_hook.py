"""The interpreter hook: only the user's code reaches the handlers (netdoctor.observe.hook)."""

from __future__ import annotations

import numpy as np

from netdoctor.observe.hook import Hook


def user_function(x):
    return np.tanh(x)          # numpy's own calls must not reach the handler


def other_function(x):
    return x


def test_only_user_code_is_reported_and_routes_override_defaults():
    calls, returns = [], []
    hook = Hook([__file__], lambda f: calls.append(f.f_code.co_name),
                lambda f, v: returns.append((f.f_code.co_name, v)), lambda f: None)
    hook.install()
    try:
        user_function(np.zeros(2))
    finally:
        hook.uninstall()
    assert calls == ["user_function"]
    assert returns[0][0] == "user_function" and np.allclose(returns[0][1], 0)

    routed = []
    hook.set_default(None, None)                           # no interest in the user's code at large ...
    hook.route(other_function.__code__, lambda f: routed.append("call"), None)   # ... but in this one
    hook.install()
    try:
        user_function(np.zeros(2))
        other_function(1)
    finally:
        hook.uninstall()
    assert routed == ["call"]


def test_line_events_only_for_chosen_code():
    lines = []

    def looped():
        total = 0
        for i in range(3):
            total += i
        return total

    hook = Hook([__file__], None, None, lambda f: lines.append((f.f_code.co_name, f.f_lineno)))
    hook.install()
    hook.trace_lines({looped.__code__})
    try:
        looped()
        user_function(np.zeros(1))
    finally:
        hook.uninstall()
    assert lines and {name for name, _ in lines} == {"looped"}
