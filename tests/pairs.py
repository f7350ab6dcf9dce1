"""Controlled experiments for the rule catalogue: reference-MLP configurations.

* :data:`PAIRS` — per rule code, a *bad* configuration that has the problem the rule is
  about and a *good* one of the same kind that does not (``tests/test_rule_pairs.py``).
* :data:`HEALTHY` — configurations that train reliably on every seed; no error finding
  is allowed on them (``tests/test_detection_matrix.py``).
* :func:`fault_config` — the network each fault of :mod:`netdoctor.faults` is injected
  into for the detection matrix: a small XOR network adjusted to what the fault needs.

Everything is tiny (a few hundred steps of a network with a handful of units) so the
whole catalogue runs in seconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

# --- data makers: seed -> (X, y) ----------------------------------------------------------

XOR_X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
XOR_Y = np.array([0, 1, 1, 0])


def xor(seed: int = 0):
    return XOR_X, XOR_Y


def xor_inputs_times(factor: float) -> Callable[[int], tuple]:
    def make(seed: int = 0):
        return XOR_X * factor, XOR_Y

    return make


def xor_plus_minus_targets(seed: int = 0):
    """XOR with targets -1/+1: what a tanh output would want, unreachable for a sigmoid."""
    return XOR_X, 2.0 * XOR_Y - 1.0


def blobs(seed: int = 0, per_class: int = 20):
    """Three Gaussian clusters in 2-D, standardised; labels 0, 1, 2."""
    rng = np.random.default_rng(1000 + seed)
    centres = np.array([[0.0, 2.0], [-1.7, -1.0], [1.7, -1.0]])
    y = np.repeat(np.arange(3), per_class)
    X = centres[y] + rng.normal(0.0, 0.5, (len(y), 2))
    return (X - X.mean(axis=0)) / X.std(axis=0), y


def sine(seed: int = 0, n: int = 40):
    """y = sin(x) on [-2, 2] plus a little noise: a smooth regression."""
    rng = np.random.default_rng(2000 + seed)
    X = np.linspace(-2.0, 2.0, n)[:, None]
    return X, np.sin(X[:, 0]) + rng.normal(0.0, 0.05, n)


def sine_targets_times(factor: float) -> Callable[[int], tuple]:
    """The sine regression with targets scaled up: raw units (dollars, x**3) never standardised."""

    def make(seed: int = 0):
        X, y = sine(seed)
        return X, y * factor

    return make


DATA: dict[str, Callable[[int], tuple]] = {
    "xor": xor,
    "xor_x20": xor_inputs_times(20.0),
    "xor_x1000": xor_inputs_times(1000.0),
    "xor_pm1": xor_plus_minus_targets,
    "blobs": blobs,
    "sine": sine,
    "sine_y1e4": sine_targets_times(1e4),
}


# --- configurations -------------------------------------------------------------------------


@dataclass(frozen=True)
class Config:
    """One reference run: MLP keyword arguments, a data maker's name, epochs."""

    mlp: dict[str, Any] = field(hash=False)
    data: str = "xor"
    epochs: int = 300

    @property
    def key(self) -> str:
        """A stable identity for caching runs (the dict makes the dataclass unhashable)."""
        return f"{sorted(self.mlp.items())!r}|{self.data}|{self.epochs}"

    def build(self, seed: int = 0):
        from netdoctor.mlp import MLP

        return MLP(**self.mlp, seed=seed)

    def run(self, seed: int = 0, name: str = "run"):
        """Train under observation: the Trace the rules judge."""
        from netdoctor.reference import run_reference

        X, y = DATA[self.data](seed)
        return run_reference(self.build(seed), X, y, epochs=self.epochs, name=name)

    def __str__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.mlp.items())
        return f"MLP({args}) on {self.data} for {self.epochs} epochs"


@dataclass(frozen=True)
class Pair:
    bad: Config
    good: Config
    why: str


def _with(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**base, **changes}


# Building blocks: small networks that learn their data reliably.
XOR_TANH = dict(layers=[2, 4, 1], activation="tanh", output="sigmoid", loss="bce", lr=0.5)
XOR_SIGMOID = dict(layers=[2, 4, 1], activation="sigmoid", output="sigmoid", loss="bce", lr=1.0)
XOR_RELU = dict(layers=[2, 16, 1], activation="relu", output="sigmoid", loss="bce", init="he", lr=0.3)
XOR_ADAM = dict(layers=[2, 8, 1], activation="tanh", output="sigmoid", loss="bce", optimizer="adam", lr=0.05)
BLOBS_SOFTMAX = dict(layers=[2, 8, 3], activation="tanh", output="softmax", loss="ce", lr=0.5)
SINE_TANH = dict(layers=[1, 16, 1], activation="tanh", output="linear", loss="mse", lr=0.1)
# The seed question's network: 2-2-2-2, sigmoid everywhere, rnd.rand init, per-sample SGD.
SEED_NET = dict(layers=[2, 2, 2, 2], activation="sigmoid", output="sigmoid", loss="bce",
                init="uniform01", batch_size=1, lr=0.5)

GOOD_XOR = Config(XOR_TANH, "xor", 300)
GOOD_XOR_SIGMOID = Config(XOR_SIGMOID, "xor", 300)
GOOD_BLOBS = Config(BLOBS_SOFTMAX, "blobs", 200)
GOOD_SINE = Config(SINE_TANH, "sine", 300)


def _faulty(base: dict[str, Any], fault: str) -> dict[str, Any]:
    return _with(base, faults=(fault,))


@dataclass(frozen=True)
class FrameworkRun:
    """A framework run (torch or Keras) as its watcher records it, built without the framework.

    The ND7 rules read what a framework said about the model (the ``framework`` event),
    the layers and the data; these facts are what :mod:`netdoctor.frameworks` records
    when the bug is really there. ``tests/test_frameworks.py`` produces the same codes
    from real torch and Keras training, where those are installed.
    """

    framework: str = "torch"
    layers: tuple = (("fc1", 2, 8, "relu"), ("fc2", 8, 1, "sigmoid"))
    facts: tuple = ()                      # (key, value) pairs merged into the framework event
    targets: tuple = (0.0, 1.0, 1.0, 0.0)
    loss: str = "bce"
    losses: tuple = (0.7, 0.5, 0.3, 0.1)   # the loss series, one value per step

    @property
    def key(self) -> str:
        return repr(self)

    def run(self, seed: int = 0, name: str = "run"):
        from netdoctor import probes
        from netdoctor.trace import MODEL, Recorder, Trace
        from netdoctor.types import LayerInfo, RunInfo

        layers = [LayerInfo(name=n, fan_in=i, fan_out=o, activation=a, has_bias=True,
                            is_output=k == len(self.layers) - 1)
                  for k, (n, i, o, a) in enumerate(self.layers)]
        classification = self.loss in ("bce", "ce")
        info = RunInfo(name=name, steps=len(self.losses) - 1, source=self.framework, layers=layers,
                       loss=self.loss, output=layers[-1].activation,
                       task="classification" if classification else "regression",
                       n_classes=2 if classification else None)
        recorder = Recorder()
        for step, value in enumerate(self.losses):
            recorder.record(step, {(MODEL, "loss"): value})
        trace = Trace(info, recorder)
        y = np.asarray(self.targets, dtype=float)
        X = np.linspace(-1, 1, 2 * len(y)).reshape(len(y), 2)
        trace.add_event("data", probes.data_facts(X, y, y[:, None], None, layers[-1].fan_out))
        facts = {"framework": self.framework, "output_activation": layers[-1].activation,
                 "output_units": layers[-1].fan_out,
                 "layers": [{"name": l.name, "units": l.fan_out, "activation": l.activation, "trainable": True}
                            for l in layers]}
        facts.update(dict(self.facts))
        trace.add_event("framework", facts)
        return trace


_TORCH_LOOP = (("optimizer", "SGD"), ("backward_calls", 100), ("optimizer_steps", 100),
               ("grad_checked", 99), ("grad_stale", 0), ("loss_fn", "binary_cross_entropy"),
               ("loss_kind", "bce"))
_KERAS_FIT = (("framework", "keras"), ("loss_fn", "binary_crossentropy"), ("loss_kind", "bce"),
              ("from_logits", False), ("y_shape", [4]))
_FROZEN_FC1 = (("layers", [{"name": "fc1", "units": 8, "activation": "relu", "trainable": False},
                           {"name": "fc2", "units": 1, "activation": "sigmoid", "trainable": True}]),)
_SOFTMAX_3 = (("fc1", 4, 16, "relu"), ("fc2", 16, 3, "softmax"))
_CE_LOOP = tuple(dict(_TORCH_LOOP, loss_fn="cross_entropy", loss_kind="ce", from_logits=True).items())

PAIRS: dict[str, Pair] = {
    "ND101": Pair(Config(_faulty(SEED_NET, "double_sigmoid"), "xor", 300), GOOD_XOR,
                  "the seed: sigmoid applied twice pins the XOR outputs at 0.5"),
    "ND102": Pair(Config(_faulty(XOR_TANH, "zero_init"), "xor", 300), GOOD_XOR,
                  "identical hidden units cannot separate XOR: one class for every input"),
    "ND103": Pair(Config(_with(BLOBS_SOFTMAX, layers=[2, 64, 3], init="normal"), "blobs", 50), GOOD_BLOBS,
                  "N(0, 1) weights on 64 units give confidently wrong first predictions"),
    "ND104": Pair(Config(_faulty(XOR_TANH, "lr_too_low"), "xor", 300), GOOD_XOR,
                  "a learning rate 1e-4 of the working one leaves the loss flat"),
    "ND105": Pair(Config(_faulty(XOR_TANH, "wrong_update_sign"), "xor", 300), GOOD_XOR,
                  "gradient ascent makes the loss climb"),
    "ND106": Pair(Config(_faulty(SINE_TANH, "lr_too_high"), "sine", 100), GOOD_SINE,
                  "lr x1000 on a regression overflows to Inf/NaN"),
    "ND201": Pair(Config(_with(XOR_SIGMOID, layers=[2] + [8] * 8 + [1], lr=0.5), "xor", 200), GOOD_XOR,
                  "eight sigmoid layers shrink the backward signal to nothing"),
    "ND202": Pair(Config(_with(SINE_TANH, lr=0.5), "sine", 100), GOOD_SINE,
                  "lr 5x too high on a regression: the gradient grows without bound"),
    "ND203": Pair(Config(_faulty(XOR_TANH, "output_error_as_hidden_delta"), "xor", 300), GOOD_XOR,
                  "the hidden delta reuses the output error instead of back-propagating it"),
    "ND204": Pair(Config(_faulty(XOR_TANH, "gradient_wrong_scale"), "xor", 300), GOOD_XOR,
                  "gradients summed over the batch while the loss is averaged"),
    "ND301": Pair(Config(XOR_TANH, "xor_x20", 300), GOOD_XOR,
                  "inputs 20x larger push the tanh units into their flat tails"),
    "ND302": Pair(Config(_faulty(XOR_RELU, "lr_too_high"), "xor", 300), Config(XOR_RELU, "xor", 300),
                  "one huge step switches every ReLU unit off for good"),
    "ND303": Pair(Config(_faulty(XOR_SIGMOID, "double_sigmoid"), "xor", 300), GOOD_XOR_SIGMOID,
                  "1/(1+expit(-x)) instead of expit(x)"),
    "ND304": Pair(Config(_faulty(XOR_SIGMOID, "derivative_of_activation"), "xor", 300), GOOD_XOR_SIGMOID,
                  "sigmoid'(a) with a = sigmoid(z) instead of sigmoid'(z)"),
    "ND401": Pair(Config(_faulty(XOR_TANH, "zero_init"), "xor", 300), GOOD_XOR,
                  "all-zero initial weights: identical hidden units forever"),
    "ND402": Pair(Config(_faulty(XOR_TANH, "uniform01_init"), "xor", 300), GOOD_XOR,
                  "rnd.rand initial weights are all positive"),
    "ND403": Pair(Config(_with(XOR_TANH, layers=[2, 64, 1], init="normal"), "xor", 100),
                  Config(_with(XOR_TANH, layers=[2, 64, 1]), "xor", 100),
                  "N(0, 1) weights are 5x the Glorot scale for a 64-unit tanh layer"),
    "ND404": Pair(Config(_faulty(XOR_TANH, "bias_not_updated"), "xor", 300), GOOD_XOR,
                  "the update step forgets the biases"),
    "ND405": Pair(Config(_faulty(XOR_TANH, "no_bias"), "xor", 300), GOOD_XOR,
                  "layers without a bias"),
    "ND501": Pair(Config(_faulty(XOR_TANH, "lr_too_high"), "xor", 300), GOOD_XOR,
                  "lr x1000: each step is larger than the weights"),
    "ND502": Pair(Config(_faulty(XOR_TANH, "lr_too_low"), "xor", 300), GOOD_XOR,
                  "lr x1e-4: each step a millionth of the weights"),
    "ND503": Pair(Config(_faulty(XOR_TANH, "wrong_update_sign"), "xor", 300), GOOD_XOR,
                  "W += lr * dW"),
    "ND601": Pair(Config(_with(XOR_TANH, loss="mse"), "xor_pm1", 300),
                  Config(_with(XOR_TANH, loss="mse"), "xor", 300),
                  "targets -1/+1 for a sigmoid output"),
    "ND602": Pair(Config(XOR_TANH, "xor_x1000", 100), GOOD_XOR,
                  "inputs in the thousands"),
    "ND603": Pair(Config(_with(BLOBS_SOFTMAX, layers=[2, 8, 1], output="sigmoid", loss="mse"), "blobs", 100),
                  GOOD_BLOBS,
                  "labels 0, 1, 2 trained against one sigmoid unit"),
    # ND7: what torch/Keras recorded about the model (see FrameworkRun)
    "ND701": Pair(FrameworkRun(layers=_SOFTMAX_3, loss="ce", targets=(0, 1, 2, 1),
                               facts=_CE_LOOP + (("ce_input_is_probability", True),)),
                  FrameworkRun(layers=(("fc1", 4, 16, "relu"), ("fc2", 16, 3, "linear")), loss="ce",
                               targets=(0, 1, 2, 1), facts=_CE_LOOP + (("ce_input_is_probability", False),)),
                  "F.softmax in forward() before nn.CrossEntropyLoss squashes twice"),
    "ND702": Pair(FrameworkRun(layers=(("dense", 2, 8, "relu"), ("out", 8, 1, "linear")), facts=_KERAS_FIT),
                  FrameworkRun(facts=_KERAS_FIT),
                  "binary_crossentropy on a linear Dense(1) without from_logits=True"),
    "ND703": Pair(FrameworkRun(layers=(("dense", 2, 8, "tanh"), ("out", 8, 1, "softmax")), facts=_KERAS_FIT),
                  FrameworkRun(facts=_KERAS_FIT),
                  "Dense(1, activation='softmax') is identically 1"),
    "ND704": Pair(FrameworkRun(facts=_TORCH_LOOP + (("grad_stale", 99),)), FrameworkRun(facts=_TORCH_LOOP),
                  ".grad still holds the last gradient after every update: no zero_grad()"),
    "ND705": Pair(FrameworkRun(facts=_TORCH_LOOP + (("optimizer_steps", 0),), losses=(0.7,)),
                  FrameworkRun(facts=_TORCH_LOOP),
                  "backward() 100 times, optimizer.step() never"),
    "ND706": Pair(FrameworkRun(facts=_TORCH_LOOP + _FROZEN_FC1), FrameworkRun(facts=_TORCH_LOOP),
                  "requires_grad=False left on fc1 of an untrained model"),
    "ND707": Pair(FrameworkRun(facts=_TORCH_LOOP + (("train_steps_in_eval", 90), ("mode_sensitive", ["drop"]))),
                  FrameworkRun(facts=_TORCH_LOOP + (("train_steps_in_eval", 0), ("mode_sensitive", ["drop"]))),
                  "model.eval() for validation and no model.train() before the next epoch"),
    "ND708": Pair(FrameworkRun(layers=(("fc1", 1, 8, "tanh"), ("fc2", 8, 1, "linear")), loss="mse",
                               targets=(0.1, 0.5, -0.3, 0.2),
                               facts=_TORCH_LOOP + (("loss_fn", "mse_loss"), ("loss_kind", "mse"), ("broadcast", {
                                   "pred_shape": [4, 1], "target_shape": [4], "result_shape": [4, 4]}))),
                  FrameworkRun(layers=(("fc1", 1, 8, "tanh"), ("fc2", 8, 1, "linear")), loss="mse",
                               targets=(0.1, 0.5, -0.3, 0.2),
                               facts=_TORCH_LOOP + (("loss_fn", "mse_loss"), ("loss_kind", "mse"))),
                  "MSELoss between (n, 1) predictions and (n,) targets"),
    "ND709": Pair(FrameworkRun(layers=(("fc1", 2, 8, "linear"), ("fc2", 8, 1, "sigmoid")), facts=_TORCH_LOOP),
                  FrameworkRun(facts=_TORCH_LOOP),
                  "nn.Linear(2, 8) straight into nn.Linear(8, 1): one linear map"),
    "ND710": Pair(Config(SINE_TANH, "sine_y1e4", 100), GOOD_SINE,
                  "sine targets in raw units (x 1e4) into a linear output"),

}


# --- the detection matrix -------------------------------------------------------------------

# Healthy configurations: each learns its data on every seed. Issue 2 asks for XOR with
# tanh or a wider hidden layer, softmax + CE on 3 classes, an MSE regression, a ReLU net
# and an Adam run; per-sample SGD (as in the seed) is added as a sixth.
HEALTHY: dict[str, Config] = {
    "xor_tanh": Config(XOR_TANH, "xor", 300),
    "blobs_softmax_ce": Config(BLOBS_SOFTMAX, "blobs", 200),
    "sine_mse": Config(_with(SINE_TANH), "sine", 400),
    "xor_relu": Config(XOR_RELU, "xor", 300),
    "xor_adam": Config(XOR_ADAM, "xor", 300),
    "xor_per_sample": Config(_with(XOR_TANH, layers=[2, 8, 1], batch_size=1, lr=0.1), "xor", 200),
}


def fault_config(fault: str, epochs: int = 300) -> Config:
    """The network `fault` is injected into for the detection matrix.

    A 2-4-1 tanh/sigmoid XOR network by default, changed only where the fault needs
    something else (``Fault.needs``): softmax faults run on the 3-class blobs, and the
    seed's double sigmoid runs in the seed's own 2-2-2-2 per-sample network.
    """
    from netdoctor.faults import FAULTS

    needs = dict(FAULTS[fault].needs)
    if fault == "double_sigmoid":
        return Config(_faulty(SEED_NET, fault), "xor", epochs)
    base = BLOBS_SOFTMAX if needs.get("output") == "softmax" else XOR_TANH
    data = "blobs" if base is BLOBS_SOFTMAX else "xor"
    mlp = _with(base, **needs, faults=(fault,))
    if mlp.get("activation") == "sigmoid" and base is XOR_TANH:
        mlp["lr"] = XOR_SIGMOID["lr"]
    return Config(mlp, data, epochs)
