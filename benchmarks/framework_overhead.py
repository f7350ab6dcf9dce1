"""What observing a torch or Keras training run costs, per step, in one process.

The same network (784-256-256-10, ReLU, softmax cross-entropy, SGD), the same batch
(128) and the same synthetic data, trained by an ordinary PyTorch loop and by Keras 3
``Model.fit`` (torch backend), each with and without netdoctor's hooks (the automatic
schedule: what ``netdoctor diagnose`` installs). Repetitions alternate the order; the
script prints the median milliseconds per step and the ratio observed / plain
(target: at most 1.10).

Neither framework is a netdoctor dependency; a missing one is skipped with a note.

    python benchmarks/framework_overhead.py               # 300 steps, 5 repetitions
    python benchmarks/framework_overhead.py --steps 500 --reps 7
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("KERAS_BACKEND", "torch")

BATCH, SIZES = 128, (784, 256, 256, 10)


def _data(steps: int):
    import numpy as np

    rng = np.random.default_rng(0)
    X = rng.normal(0, 1, (BATCH * steps, SIZES[0])).astype("float32")
    y = rng.integers(0, SIZES[-1], BATCH * steps)
    return X, y


def torch_run(steps: int, observed: bool, data) -> float:
    import torch
    from torch import nn

    torch.manual_seed(0)
    X, y = torch.from_numpy(data[0]), torch.from_numpy(data[1])
    model = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 10))
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    loss_fn = nn.CrossEntropyLoss()
    watcher = None
    if observed:
        from netdoctor.frameworks.torch_hooks import TorchWatcher

        watcher = TorchWatcher("bench", None, None)
        watcher.install()
    try:
        start = time.perf_counter()
        for i in range(steps):
            xb, yb = X[i * BATCH:(i + 1) * BATCH], y[i * BATCH:(i + 1) * BATCH]
            opt.zero_grad()
            loss = loss_fn(model(xb), yb)
            loss.backward()
            opt.step()
        elapsed = time.perf_counter() - start
    finally:
        if watcher is not None:
            watcher.uninstall()
    if watcher is not None:
        assert watcher.finish().info.steps == steps  # it really watched
    return elapsed / steps


def keras_run(steps: int, observed: bool, data) -> float:
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input(shape=(784,)), keras.layers.Dense(256, activation="relu"),
                              keras.layers.Dense(256, activation="relu"), keras.layers.Dense(10)])
    model.compile(optimizer=keras.optimizers.SGD(0.05),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(data[0][:BATCH], data[1][:BATCH], epochs=1, batch_size=BATCH, verbose=0)  # build, warm up
    watcher = None
    if observed:
        from netdoctor.frameworks.keras_callback import KerasWatcher

        watcher = KerasWatcher("bench", None, None)
        watcher.install()
    try:
        start = time.perf_counter()
        model.fit(data[0], data[1], epochs=1, batch_size=BATCH, shuffle=False, verbose=0)
        elapsed = time.perf_counter() - start
    finally:
        if watcher is not None:
            watcher.uninstall()
    if watcher is not None:
        assert watcher.best_run().step == steps
    return elapsed / steps


def measure(name: str, fn, steps: int, reps: int) -> None:
    data = _data(steps)
    fn(min(steps, 20), False, data)  # warm-up: imports, allocator, first-call costs
    plain, observed = [], []
    for rep in range(reps):
        order = (False, True) if rep % 2 == 0 else (True, False)
        for flag in order:
            (observed if flag else plain).append(fn(steps, flag, data))
    p, o = statistics.median(plain), statistics.median(observed)
    print(f"{name:6s}  plain {1e3 * p:7.3f} ms/step   with netdoctor {1e3 * o:7.3f} ms/step   "
          f"ratio {o / p:.3f}x")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args(argv)
    print(f"784-256-256-10 MLP, batch {BATCH}, {args.steps} steps x {args.reps} repetitions, "
          f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}")
    for name, fn, module in (("torch", torch_run, "torch"), ("keras", keras_run, "keras")):
        try:
            __import__(module)
        except Exception as exc:  # noqa: BLE001 - a missing framework is a note, not a failure
            print(f"{name:6s}  skipped: {module} cannot be imported ({type(exc).__name__}: {exc})")
            continue
        measure(name, fn, args.steps, args.reps)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
