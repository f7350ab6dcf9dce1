"""False-error rate: error findings on networks that train.

An error finding tells a person to stop and fix their code, so on a healthy run it
must not appear. This benchmark runs healthy networks and counts error findings,
per rule:

* **reference MLP** configurations (XOR, blobs, spirals with softmax, regression,
  deep tanh, ReLU + Adam, mini-batch and per-sample SGD, inputs at scale 1-10),
  each over several seeds, with rounding-level noise on the initial weights
  (:func:`netdoctor.seeding.perturb_weights`), so a knife-edge verdict shows;
* **healthy scripts**: every case study's ``fixed.py`` (and extra healthy scripts),
  plus any folder of scripts given with ``--scripts DIR`` that holds an
  ``expect.json``: its cases marked ``"healthy": true`` and the ``fixed.py`` of its buggy
  cases (a correction that trains; each run from its own folder).

    python benchmarks/false_errors.py                       # MLP configs x 10 seeds + case studies
    python benchmarks/false_errors.py --seeds 3 --no-cases  # quicker
    python benchmarks/false_errors.py --scripts PATH/TO/CORPUS --script-seeds 2

Target: 0 error findings. A configuration that fails to train on a seed is
reported as such (it is then not a healthy run, and its errors are not counted as
false ones); the table says how many runs fitted.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


# --- data: seed -> (X, y) -----------------------------------------------------------------------

XOR_X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
XOR_Y = np.array([0, 1, 1, 0])


def xor(seed: int, scale: float = 1.0):
    return XOR_X * scale, XOR_Y


def blobs(seed: int, centre: float = 4.0, scale: float = 1.0, per_class: int = 60):
    """Three well-separated Gaussian blobs (centres about +-centre, unit noise), labels 0..2."""
    rng = np.random.default_rng(100 + seed)
    centres = np.array([[centre, centre], [-centre, centre], [0.0, -centre]])
    y = np.repeat(np.arange(3), per_class)
    return (centres[y] + rng.normal(size=(len(y), 2))) * scale, y


def spirals(seed: int, arms: int = 3, per_arm: int = 80, noise: float = 0.15):
    """Interleaved spiral arms, one class per arm (inputs within about +-1)."""
    rng = np.random.default_rng(200 + seed)
    X, y = [], []
    for k in range(arms):
        r = np.linspace(0.05, 1.0, per_arm)
        t = np.linspace(k * 2 * np.pi / arms, k * 2 * np.pi / arms + 3.0, per_arm) + rng.normal(0, noise, per_arm)
        X.append(np.c_[r * np.sin(t), r * np.cos(t)])
        y.append(np.full(per_arm, k))
    return np.concatenate(X), np.concatenate(y)


def circle(seed: int, n: int = 200):
    rng = np.random.default_rng(300 + seed)
    X = rng.uniform(-1, 1, (n, 2))
    return X, (np.sum(X ** 2, axis=1) < 0.5).astype(int)


def sine(seed: int, n: int = 60, scale: float = 1.0):
    rng = np.random.default_rng(400 + seed)
    X = np.linspace(-2.0, 2.0, n)[:, None]
    return X * scale, np.sin(X[:, 0]) + rng.normal(0, 0.05, n)


def linear(seed: int, n: int = 80, scale: float = 10.0):
    """y = x . w + noise with inputs of size ~scale (a regression on unscaled-ish inputs)."""
    rng = np.random.default_rng(500 + seed)
    X = rng.uniform(-scale, scale, (n, 3))
    return X, X @ np.array([0.5, -0.2, 0.1]) + rng.normal(0, 0.1, n)


@dataclass(frozen=True)
class Reference:
    """One healthy reference-MLP configuration."""

    name: str
    mlp: dict[str, Any] = field(hash=False)
    data: Callable[[int], tuple]
    epochs: int

    def run(self, seed: int, perturb: float = 1e-12):
        from netdoctor.mlp import MLP
        from netdoctor.reference import run_reference
        from netdoctor.seeding import perturb_weights

        model = MLP(**self.mlp, seed=seed)
        if perturb:
            perturb_weights([*model.weights, *[b for b in model.biases if b is not None]], seed, perturb)
        X, y = self.data(seed)
        return run_reference(model, X, y, epochs=self.epochs, name=f"{self.name}-{seed}")


def _p(function, **kwargs):
    return lambda seed: function(seed, **kwargs)


REFERENCE: list[Reference] = [
    Reference("xor_tanh", dict(layers=[2, 8, 1], activation="tanh", output="sigmoid", loss="bce", lr=0.5),
              xor, 400),
    Reference("xor_sigmoid_mse_per_sample", dict(layers=[2, 8, 1], activation="sigmoid", output="sigmoid",
              loss="mse", lr=2.0, batch_size=1), xor, 800),
    Reference("xor_relu_adam", dict(layers=[2, 16, 1], activation="relu", output="sigmoid", loss="bce",
              init="he", optimizer="adam", lr=0.02), xor, 400),
    Reference("xor_tanh_inputs_x5", dict(layers=[2, 8, 1], activation="tanh", output="sigmoid", loss="bce",
              lr=0.1), _p(xor, scale=5.0), 600),
    Reference("blobs_relu_softmax_he", dict(layers=[2, 16, 3], activation="relu", output="softmax", loss="ce",
              init="he", lr=0.05), blobs, 300),
    Reference("blobs_x5_leaky_momentum", dict(layers=[2, 16, 3], activation="leaky_relu", output="softmax",
              loss="ce", init="he", optimizer="momentum", lr=0.05), _p(blobs, scale=5.0), 300),
    Reference("blobs_tanh_softmax_minibatch", dict(layers=[2, 8, 3], activation="tanh", output="softmax",
              loss="ce", lr=0.1, batch_size=16), _p(blobs, centre=2.0), 100),
    Reference("spirals_relu_adam_softmax", dict(layers=[2, 64, 3], activation="relu", output="softmax",
              loss="ce", init="he", optimizer="adam", lr=0.02), spirals, 600),
    Reference("circle_deep_tanh", dict(layers=[2, 16, 16, 16, 1], activation="tanh", output="sigmoid",
              loss="bce", lr=0.3), circle, 600),
    Reference("sine_tanh_mse", dict(layers=[1, 16, 1], activation="tanh", output="linear", loss="mse", lr=0.1),
              sine, 600),
    Reference("sine_relu_adam_inputs_x3", dict(layers=[1, 32, 1], activation="relu", output="linear",
              loss="mse", init="he", optimizer="adam", lr=0.01), _p(sine, scale=3.0), 800),
    Reference("linear_regression_inputs_x10", dict(layers=[3, 1], activation="tanh", output="linear",
              loss="mse", lr=0.003), linear, 300),
    Reference("sine_tanh_per_sample", dict(layers=[1, 16, 1], activation="tanh", output="linear", loss="mse",
              lr=0.02, batch_size=1), sine, 40),
]


# --- running and counting ----------------------------------------------------------------------


def judge_reference(ref: Reference, seed: int) -> dict[str, Any]:
    from netdoctor.rules import run_rules
    from netdoctor.rules._common import run_fits
    from netdoctor.config import DEFAULT_THRESHOLDS

    trace = ref.run(seed)
    outcome = run_rules(trace)
    errors = sorted(f.code for f in outcome.findings if f.is_error)
    return {"name": ref.name, "seed": seed, "errors": errors,
            "fits": run_fits(trace, DEFAULT_THRESHOLDS).fits,
            "messages": [f"{f.code}: {f.message}" for f in outcome.findings if f.is_error],
            "crashed_rules": sorted(outcome.errors)}


def healthy_scripts(scripts_dirs: list[Path], with_cases: bool) -> list[tuple[str, Path]]:
    """(label, script) of every healthy script: case-study fixes, corpora's healthy cases and fixes."""
    found: list[tuple[str, Path]] = []
    if with_cases:
        from netdoctor.casefile import find_cases, load_case
        from netdoctor.testing import case_scripts

        for path in find_cases(ROOT / "case_studies"):
            spec = load_case(path)
            for label, script in case_scripts(spec).items():
                if label != "original":
                    found.append((f"{spec.name}/{label}", Path(script)))
    for folder in scripts_dirs:
        expect = json.loads((folder / "expect.json").read_text())
        for case, e in sorted(expect.items()):
            if case.startswith("_"):
                continue
            if e.get("healthy"):
                found.append((f"{folder.name}/{case}", folder / case / "original.py"))
            elif (folder / case / "fixed.py").is_file():   # a buggy case's correction trains too
                found.append((f"{folder.name}/{case}/fixed", folder / case / "fixed.py"))
    return found


def judge_script(label: str, script: Path, seed: int | None) -> dict[str, Any]:
    from netdoctor.testing import diagnose_script

    script = script.resolve()   # (a relative path would not survive the change of folder)
    cwd = os.getcwd()
    os.chdir(script.parent)   # each script runs from its own folder, as its author ran it
    try:
        run = diagnose_script(script, "run", timeout=300, seed=seed)
    finally:
        os.chdir(cwd)
    if run.report is None:
        return {"name": label, "seed": seed, "errors": [], "problem": run.problem, "messages": []}
    findings = run.report.findings_for("run")
    return {"name": label, "seed": seed, "errors": sorted(f.code for f in findings if f.is_error),
            "messages": [f"{f.code}: {f.message}" for f in findings if f.is_error],
            "steps": run.report.runs["run"].info.steps}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=10, help="seeds per reference-MLP configuration")
    ap.add_argument("--script-seeds", type=int, default=1,
                    help="seeds per healthy script (the first is the script's own seed)")
    ap.add_argument("--scripts", type=Path, action="append", default=[],
                    help="a corpus folder with expect.json (its healthy cases and fixed.py scripts run from there)")
    ap.add_argument("--no-cases", action="store_true", help="skip the case studies' fixed scripts")
    ap.add_argument("--no-reference", action="store_true", help="skip the reference-MLP configurations")
    ap.add_argument("--json", type=Path, help="write every run's result here")
    a = ap.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")

    results = []
    if not a.no_reference:
        for ref in REFERENCE:
            for seed in range(a.seeds):
                results.append({"kind": "reference", **judge_reference(ref, seed)})
            runs = [r for r in results if r["name"] == ref.name]
            print(f"  {ref.name:34s} {sum(bool(r['errors']) for r in runs)}/{len(runs)} runs with errors, "
                  f"{sum(r['fits'] is True for r in runs)}/{len(runs)} fit", flush=True)
    for label, script in healthy_scripts(a.scripts, not a.no_cases):
        for k in range(a.script_seeds):
            result = judge_script(label, script, None if k == 0 else k)
            results.append({"kind": "script", **result})
            state = result.get("problem") or (", ".join(result["errors"]) or "no errors")
            print(f"  {label:46s} seed {result['seed']}: {state}", flush=True)

    per_rule = Counter(code for r in results for code in r["errors"])
    for kind in ("reference", "script"):
        runs = [r for r in results if r["kind"] == kind]
        if runs:
            bad = sum(bool(r["errors"]) for r in runs)
            unjudged = sum(bool(r.get("problem")) for r in runs)
            print(f"{kind}: {len(runs)} runs, {bad} with an error finding, "
                  f"{sum(len(r['errors']) for r in runs)} error findings"
                  + (f"; {unjudged} not judged (the script could not be diagnosed)" if unjudged else ""))
    print("error findings per rule:", dict(sorted(per_rule.items())) or "none")
    unjudged = [r for r in results if r.get("problem")]
    for r in results:
        for message in r["messages"]:
            print(f"  {r['name']} seed {r['seed']}: {message[:160]}")
    if a.json:
        a.json.write_text(json.dumps(results, indent=1, default=str))
    return 0 if not per_rule and not unjudged else 1   # (a run not judged is no clean run)


if __name__ == "__main__":
    sys.exit(main())
