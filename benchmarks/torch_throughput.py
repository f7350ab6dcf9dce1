"""Reference MLP throughput vs a PyTorch CPU training loop, in one process.

The same network (784-256-256-10, ReLU, softmax + cross-entropy, plain SGD), the
same batch (128) and the same synthetic data, trained by ``netdoctor.MLP.fit``
(NumPy, float64, no probes) and by an ordinary PyTorch loop (shuffle, forward,
loss, backward, optimiser step) in float64 and, separately, in float32. Repetitions
alternate the order; the script prints median milliseconds per step and the ratio
PyTorch time / netdoctor time (>= 1.0 means the reference MLP is at least as fast).

PyTorch is not a netdoctor dependency. Without it the script says so and exits 0.

    python benchmarks/torch_throughput.py                  # 300 steps, 5 repetitions
    python benchmarks/torch_throughput.py --steps 500 --threads 2 --clock wall
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from datetime import date


def _set_threads(argv: list[str]) -> str:
    """Honour --threads N before NumPy and PyTorch load their math libraries."""
    threads = "1"
    if "--threads" in argv[:-1]:
        threads = argv[argv.index("--threads") + 1]
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, threads)
    return os.environ["OPENBLAS_NUM_THREADS"]


THREADS = _set_threads(sys.argv)

import numpy as np  # noqa: E402 - after the thread setting on purpose

from netdoctor.mlp import MLP  # noqa: E402

LAYERS = [784, 256, 256, 10]
BATCH = 128
LR = 0.05

# CPU time of this process by default: on a shared machine, time spent waiting for a
# core is not ours. With one math-library thread it is exactly the work done.
CLOCKS = {"cpu": time.process_time, "wall": time.perf_counter}
clock = CLOCKS["cpu"]


def synthetic_data(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(0.0, 1.0, (10, LAYERS[0]))
    labels = rng.integers(0, 10, n)
    return centres[labels] + rng.normal(0.0, 2.0, (n, LAYERS[0])), labels


def time_reference(X, y) -> float:
    model = MLP(LAYERS, activation="relu", output="softmax", loss="ce", init="he",
                optimizer="sgd", lr=LR, batch_size=BATCH, seed=0)
    start = clock()
    model.fit(X, y, 1)
    return clock() - start


def time_torch(torch, X, y, dtype) -> float:
    torch.manual_seed(0)
    layers = []
    for i, (fan_in, fan_out) in enumerate(zip(LAYERS[:-1], LAYERS[1:])):
        layers.append(torch.nn.Linear(fan_in, fan_out, dtype=dtype))
        if i < len(LAYERS) - 2:
            layers.append(torch.nn.ReLU())
    net = torch.nn.Sequential(*layers)
    optimiser = torch.optim.SGD(net.parameters(), lr=LR)
    loss_fn = torch.nn.CrossEntropyLoss()  # softmax + cross-entropy, mean over the batch
    Xt = torch.as_tensor(X, dtype=dtype)
    yt = torch.as_tensor(y, dtype=torch.long)
    start = clock()
    order = torch.randperm(len(Xt))  # one epoch, shuffled, as MLP.fit does
    for i in range(0, len(Xt), BATCH):
        idx = order[i : i + BATCH]
        loss = loss_fn(net(Xt[idx]), yt[idx])
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
    return clock() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300, help="training steps per run (default 300)")
    parser.add_argument("--reps", type=int, default=5, help="repetitions, alternating order (default 5)")
    parser.add_argument("--threads", default="1", help="math-library threads for both (default 1)")
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="cpu",
                        help="cpu: this process's CPU time (default); wall: elapsed time")
    args = parser.parse_args(argv)
    global clock
    clock = CLOCKS[args.clock]
    try:
        import torch
    except ImportError:
        print("torch not installed: nothing to compare against "
              "(pip install torch==2.13.0 to run this benchmark; netdoctor does not need it)")
        return 0
    torch.set_num_threads(int(THREADS))

    X, y = synthetic_data(args.steps * BATCH)
    runs = {
        "netdoctor MLP (float64)": lambda: time_reference(X, y),
        "torch float64": lambda: time_torch(torch, X, y, torch.float64),
        "torch float32": lambda: time_torch(torch, X, y, torch.float32),
    }
    for run in runs.values():  # warm-up
        run()
    times: dict[str, list[float]] = {name: [] for name in runs}
    names = list(runs)
    for rep in range(args.reps):
        for name in names[rep % len(names):] + names[: rep % len(names)]:  # rotate the order
            times[name].append(runs[name]())

    ours = statistics.median(times[names[0]])
    print(f"reference MLP vs PyTorch CPU, {date.today().isoformat()}")
    print(f"network {'-'.join(map(str, LAYERS))}, ReLU, softmax + CE, SGD, batch {BATCH}, "
          f"{args.steps} steps, {args.reps} repetitions (rotated order), {args.clock} time, threads {THREADS}, "
          f"numpy {np.__version__}, torch {torch.__version__}")
    for name in names:
        median = statistics.median(times[name])
        line = f"{name:26s} {median / args.steps * 1e3:7.2f} ms/step"
        if name != names[0]:
            line += f"   torch/netdoctor = {median / ours:.2f}x"
        print(line)
    print("target: >= 1.0x (the float64 comparison is like for like; float32 is shown for reference)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
