"""Probe overhead: a probed reference run vs plain `fit`, in one process.

Trains the same 784-256-256-10 MLP (ReLU, softmax + cross-entropy, SGD, batch 128)
on synthetic data (6,400 samples; more steps = more epochs) three ways per
repetition -- ``model.fit`` (no probes at all), ``run_reference`` (probes, on the
automatic schedule unless told otherwise) and ``diagnose`` (probes + the rule
catalogue) -- rotating which goes first, and prints median time ratios against
``fit``. The target is <= 1.05x.

A probed run also does one-off work that does not grow with the number of steps
(set-up and the data summary, function identification, three gradient checks,
init/final parameter summaries). It is timed separately, so the per-step ratio
is shown apart from the whole-run ratios of a run this short.

By default the CPU time of this process is measured with one BLAS thread: on a
shared machine, elapsed time mostly measures the neighbours.

    python benchmarks/probe_overhead.py                 # 500 steps, 5 repetitions
    python benchmarks/probe_overhead.py --steps 1000 --reps 7
    python benchmarks/probe_overhead.py --outputs-every 1 --params-every 1   # everything, every step
    python benchmarks/probe_overhead.py --threads 2 --clock wall
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from datetime import date


def _set_blas_threads(argv: list[str]) -> str:
    """Honour --threads N before NumPy loads its BLAS (it reads the setting once).

    On a shared machine one BLAS thread gives stable timings; both sides of the
    ratio always run with the same setting.
    """
    threads = "1"
    if "--threads" in argv[:-1]:
        threads = argv[argv.index("--threads") + 1]
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, threads)
    return os.environ["OPENBLAS_NUM_THREADS"]


BLAS_THREADS = _set_blas_threads(sys.argv)

import numpy as np  # noqa: E402 - after the thread setting on purpose

from netdoctor.mlp import MLP
from netdoctor.reference import run_reference

LAYERS = [784, 256, 256, 10]
BATCH = 128
BATCHES_PER_EPOCH = 50  # a fixed data set of 6,400 samples; longer runs train more epochs


def synthetic_data(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Ten Gaussian blobs in 784 dimensions: learnable, so the run is a real training run."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0.0, 1.0, (10, LAYERS[0]))
    labels = rng.integers(0, 10, n)
    X = centres[labels] + rng.normal(0.0, 2.0, (n, LAYERS[0]))
    return X, labels


def make_model(seed: int = 0) -> MLP:
    return MLP(LAYERS, activation="relu", output="softmax", loss="ce", init="he",
               optimizer="sgd", lr=0.05, batch_size=BATCH, seed=seed)


# CPU time of this process by default: on a shared machine, time spent waiting for
# a core is not ours. With one BLAS thread it is exactly the work done.
CLOCKS = {"cpu": time.process_time, "wall": time.perf_counter}
clock = CLOCKS["cpu"]


def time_fit(X, y, epochs: int) -> float:
    model = make_model()
    start = clock()
    model.fit(X, y, epochs)
    return clock() - start


def time_probed(X, y, epochs: int, schedule: dict, with_rules: bool) -> tuple[float, float]:
    """(total seconds, seconds in one-off work) of run_reference, or of diagnose() with rules."""
    import netdoctor.reference as ref
    from netdoctor.api import diagnose

    fixed = 0.0
    originals = {}

    def timed(name):
        method = getattr(ref._ReferenceRun, name)
        originals[name] = method

        def wrapper(self, *args, **kwargs):
            nonlocal fixed
            t0 = clock()
            try:
                return method(self, *args, **kwargs)
            finally:
                fixed += clock() - t0

        setattr(ref._ReferenceRun, name, wrapper)

    # Set-up (incl. the data summary), function identification, gradient checks,
    # init/final parameter summaries: paid once per run, whatever its length.
    for name in ("__init__", "_gradcheck", "_function_events", "_param_events"):
        timed(name)
    try:
        model = make_model()
        start = clock()
        if with_rules:
            report = diagnose(model, X, y, epochs, **schedule)
            total = clock() - start
            trace = report.runs["original"]
        else:
            trace = run_reference(model, X, y, epochs, **schedule)
            total = clock() - start
    finally:
        for name, method in originals.items():
            setattr(ref._ReferenceRun, name, method)
    assert trace.info.status == "completed"
    return total, fixed


def main(argv: list[str] | None = None) -> int:
    global clock
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=500, help="training steps per run (default 500)")
    parser.add_argument("--reps", type=int, default=5, help="repetitions, alternating order (default 5)")
    parser.add_argument("--threads", default="1",
                        help="BLAS threads (default 1; an existing OPENBLAS_NUM_THREADS wins)")
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="cpu",
                        help="cpu: this process's CPU time (default); wall: elapsed time")
    parser.add_argument("--outputs-every", type=int, default=None,
                        help="probe-batch forward at least every n steps (default: automatic)")
    parser.add_argument("--params-every", type=int, default=None,
                        help="parameter statistics at least every n steps (default: automatic)")
    args = parser.parse_args(argv)
    clock = CLOCKS[args.clock]
    schedule = {"outputs_every": args.outputs_every, "params_every": args.params_every}

    X, y = synthetic_data(BATCHES_PER_EPOCH * BATCH)
    epochs = max(1, round(args.steps / BATCHES_PER_EPOCH))
    args.steps = epochs * BATCHES_PER_EPOCH

    # Warm-up: BLAS buffers, page faults, imports (rules included).
    time_fit(X, y, 1)
    time_probed(X, y, 1, schedule, with_rules=True)

    runs = {"fit": [], "probed": [], "probed_fixed": [], "diagnose": []}
    for rep in range(args.reps):
        order = ("fit", "probed", "diagnose")
        order = order[rep % 3:] + order[: rep % 3]  # rotate: no side always runs first
        for which in order:
            if which == "fit":
                runs["fit"].append(time_fit(X, y, epochs))
            elif which == "probed":
                total, fixed = time_probed(X, y, epochs, schedule, with_rules=False)
                runs["probed"].append(total)
                runs["probed_fixed"].append(fixed)
            else:
                runs["diagnose"].append(time_probed(X, y, epochs, schedule, with_rules=True)[0])

    med = {k: statistics.median(v) for k, v in runs.items()}
    fits = runs["fit"]
    # Ratios within a repetition (the runs of one repetition share the machine's mood).
    ratio_all = [p / f for p, f in zip(runs["probed"], fits)]
    ratio_step = [(p - x) / f for p, x, f in zip(runs["probed"], runs["probed_fixed"], fits)]
    ratio_diag = [d / f for d, f in zip(runs["diagnose"], fits)]

    def spread(values):
        return f"median {statistics.median(values):.3f}x  (min {min(values):.3f}, max {max(values):.3f})"

    from netdoctor.reference import auto_schedule

    auto = auto_schedule(LAYERS, 64, BATCH)
    print(f"probe overhead benchmark, {date.today().isoformat()}")
    print(f"network {'-'.join(map(str, LAYERS))}, batch {BATCH}, {args.steps} steps ({epochs} epochs of "
          f"{BATCHES_PER_EPOCH * BATCH} samples), {args.reps} "
          f"repetitions (rotated order), {args.clock} time, BLAS threads {BLAS_THREADS}, "
          f"numpy {np.__version__}, python {sys.version.split()[0]}")
    print(f"schedule: probe batch every {args.outputs_every or auto[0]} steps, parameter statistics "
          f"every {args.params_every or auto[1]} steps{' (automatic)' if not any(schedule.values()) else ''}")
    print(f"fit, no probes:                 {med['fit']:.3f} s ({med['fit'] / args.steps * 1e3:.2f} ms/step)")
    print(f"run_reference, probes:          {med['probed']:.3f} s, of which one-off work "
          f"{med['probed_fixed']:.3f} s")
    print(f"diagnose (probes + rules):      {med['diagnose']:.3f} s")
    print(f"ratio per-step probes / fit:    {spread(ratio_step)}")
    print(f"ratio run_reference / fit:      {spread(ratio_all)}")
    print(f"ratio diagnose / fit:           {spread(ratio_diag)}")
    print("target: <= 1.05x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
