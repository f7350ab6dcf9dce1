"""A synthetic report shaped like the seed's failure, for testing and previewing renderers.

Nothing here was measured: the curves are written down to look like a run whose
outputs are pinned at 0.5 beside one that learns XOR, so that the text, Markdown
and HTML reports and every picture can be exercised in milliseconds without
training a network. Every run built here says so in its notes. Real reports
come from :func:`netdoctor.diagnose` and ``netdoctor demo``.
"""

from __future__ import annotations

import numpy as np

from ..report import Report
from ..trace import MODEL, Recorder, Trace
from ..types import Finding, LayerInfo, Location, RunInfo, Severity

SYNTHETIC_NOTE = "synthetic specimen data (netdoctor.render.specimen), not a measured run"
XOR_INPUTS = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
XOR_LABELS = np.array([0, 1, 1, 0])
LAYERS = ("layer1", "layer2", "layer3")

_SOURCE = (
    (65, "    def activationFunction(self, vec, type='sigmoid'):"),
    (66, ""),
    (67, "        if type == 'sigmoid':"),
    (68, "            return 1 / (1 + expit(-vec))"),
    (69, "        else:"),
)


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _xor_score(xx, yy, progress: float):
    """A score surface that moves from flat 0.5 towards XOR as `progress` goes 0 -> 1."""
    s = xx + yy
    xor = _sigmoid(12 * (s - 0.5)) - _sigmoid(12 * (s - 1.5))
    return 0.5 + progress * (xor - 0.5)


def specimen_trace(name: str, healthy: bool, *, steps: int = 400, seed: int = 0,
                   boundary: bool = True, histograms: bool = False) -> Trace:
    rng = np.random.default_rng(seed)
    info = RunInfo(
        name=name, steps=steps, source="reference", output="sigmoid", loss="bce",
        n_classes=2, task="classification",
        layers=[
            LayerInfo("layer1", 2, 2, "sigmoid", True),
            LayerInfo("layer2", 2, 2, "sigmoid", True),
            LayerInfo("layer3", 2, 2, "sigmoid", True, is_output=True),
        ],
        notes=[SYNTHETIC_NOTE],
    )
    recorder = Recorder()
    onehot = np.eye(2)[XOR_LABELS]
    t = np.arange(steps) / max(1, steps - 1)
    for k in range(steps):
        progress = 1 - np.exp(-6 * t[k]) if healthy else 0.0
        if healthy:
            outputs = 0.5 + progress * (onehot * 0.98 + 0.01 - 0.5) + rng.normal(0, 0.01, (4, 2))
        else:
            outputs = 0.501 + rng.normal(0, 2e-5, (4, 2))
        outputs = np.clip(outputs, 1e-4, 1 - 1e-4)
        probe_loss = float(-np.mean(onehot * np.log(outputs) + (1 - onehot) * np.log(1 - outputs)))
        accuracy = float(np.mean(outputs.argmax(axis=1) == XOR_LABELS)) if healthy and progress > 0.3 else 0.5
        values = {
            (MODEL, "loss"): probe_loss * (1 + rng.normal(0, 0.05)),
            (MODEL, "probe_loss"): probe_loss,
            (MODEL, "accuracy"): accuracy,
            (MODEL, "out_mean"): float(outputs.mean()),
            (MODEL, "out_std"): float(outputs.std(axis=0).mean()),
        }
        for i, layer in enumerate(LAYERS):
            scale = 10.0 ** -(i + 1)
            grad = (0.3 * (1 - 0.8 * progress) * (i + 1)) if healthy else 1e-3 * np.exp(-4 * t[k]) * scale * 10
            values[(layer, "grad_norm")] = grad * (1 + 0.1 * rng.random())
            values[(layer, "update_ratio")] = (2e-3 if healthy else 3e-6) * (1 + 0.2 * rng.random())
            values[(layer, "act_mean")] = 0.5 + (0.2 * progress * (-1) ** i if healthy else 0.23)
            values[(layer, "act_std")] = 0.05 + 0.3 * progress if healthy else 0.004
            values[(layer, "sat_frac")] = min(1.0, 0.9 * t[k] * (i + 1) / 3) if not healthy else 0.05 * progress
        recorder.record(k, values, outputs=outputs)
    trace = Trace(info, recorder, probe_inputs=XOR_INPUTS.copy(), probe_targets=XOR_LABELS.copy())
    if boundary:
        grid = np.linspace(-0.25, 1.25, 41)
        xx, yy = np.meshgrid(grid, grid)
        for k in np.linspace(0, steps - 1, 9).astype(int):
            progress = (1 - np.exp(-6 * t[k])) if healthy else 0.0
            zz = _xor_score(xx, yy, progress) if healthy else 0.501 + 1e-4 * xx
            trace.add_event("boundary", {"step": int(k), "xx": xx, "yy": yy, "zz": zz}, step=int(k))
    if histograms:
        edges = np.linspace(0, 1, 21)
        for k in (0, steps - 1):
            for layer in LAYERS:
                centre, width = (0.73, 0.01) if not healthy else (0.5, 0.05 + 0.25 * (k > 0))
                sample = np.clip(rng.normal(centre, width, 200), 0, 1)
                counts, _ = np.histogram(sample, edges)
                trace.add_event("activation_hist", {"edges": edges, "counts": counts}, step=k, layer=layer)
    return trace


def specimen_findings(original: str, fixed: str | None) -> list[Finding]:
    where = Location(file="original.py", line=68, function="Backpropogation.activationFunction",
                     source=_SOURCE)
    findings = [
        Finding("ND101", "output-pinned", Severity.ERROR, original,
                "outputs stay at 0.501±0.0001 for all 4 probe inputs from step 40",
                step=40, evidence={"out_std": 2e-5, "pinned_std": 1e-3, "pinned_checks": 5}),
        Finding("ND303", "activation-mismatch", Severity.ERROR, original,
                "activationFunction maps 0 -> 0.731 and has range (0.5, 1.0): it behaves like "
                "1/(1+sigmoid(-x)), sigmoid applied twice; targets of 0 are unreachable",
                layer="layer1", location=where,
                evidence={"f0": 0.731, "range": [0.5, 1.0], "max_err": 2e-9, "activation_match_tol": 1e-3},
                fix="return expit(vec) — scipy.special.expit already is the sigmoid",
                why="an activation that never goes below 0.5 cannot produce the targets 0"),
        Finding("ND402", "same-sign-init", Severity.WARNING, original,
                "all weights of layer1 were drawn >= 0 (min 0.02, max 0.97), e.g. U[0,1)",
                layer="layer1", evidence={"w_min": 0.02, "w_max": 0.97},
                fix="draw weights from a zero-mean distribution: rnd.randn(out, in) * sqrt(1/in)"),
        Finding("ND501", "update-ratio", Severity.WARNING, original,
                "update/weight ratio 3e-06 is below the healthy band", layer="layer2",
                evidence={"update_ratio": 3e-6, "update_ratio_warn": [1e-4, 1e-2]}),
    ]
    if fixed is not None:
        findings.append(
            Finding("ND501", "update-ratio", Severity.INFO, fixed,
                    "update/weight ratio 2e-03 sits in the healthy band", layer="layer2",
                    evidence={"update_ratio": 2e-3, "update_ratio_warn": [1e-4, 1e-2]}))
        findings.append(
            Finding("ND105", "loss-noisy", Severity.INFO, fixed,
                    "per-sample loss varies by 5% between steps (stochastic updates)",
                    evidence={"sign_change": 0.5, "oscillation_sign_change": 0.45}))
    return findings


def specimen_report(names: tuple[str, str] = ("original", "fixed"), *, steps: int = 400,
                    boundary: bool = True, histograms: bool = False) -> Report:
    """Two synthetic runs (pinned, healthy) with findings like the seed's diagnosis."""
    original, fixed = names
    traces = [
        specimen_trace(original, healthy=False, steps=steps, seed=0, boundary=boundary, histograms=histograms),
        specimen_trace(fixed, healthy=True, steps=steps, seed=1, boundary=boundary, histograms=histograms),
    ]
    return Report(traces, specimen_findings(original, fixed))
