"""Real-world backprop bugs the reference MLP can reproduce, one switch each.

``MLP(..., faults=("double_sigmoid",))`` builds the canonical network and then lets
each named fault replace one of its pieces (see :mod:`netdoctor.mlp`). Every fault
says how the bug looks in real code and which rule codes should flag it
(``expected[0]`` is the primary one), so every rule has a controlled bad/good pair.
``needs`` lists the MLP keyword settings under which the fault shows (e.g. the
derivative taking ``a`` instead of ``z`` changes nothing for ReLU). Every fault
runs with any settings; those on hidden-layer backprop need a hidden layer to matter.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np

from . import activations, identify

# The reference model (netdoctor.mlp.MLP) the faults rewire. Not imported, not even for
# type checkers: mlp imports this catalogue, and the dependency runs one way only.
MLP = Any


@dataclass(frozen=True)
class Fault:
    name: str
    summary: str
    doc: str
    expected: tuple[str, ...]
    apply: Callable[["MLP"], None]
    needs: Mapping[str, Any] = field(default_factory=dict, hash=False, compare=False)


def _hidden_layers(model: "MLP") -> range:
    return range(len(model.weights) - 1)


# --- activation functions -----------------------------------------------------------------


def _double_sigmoid(model: "MLP") -> None:
    g = identify.double_sigmoid
    model.layer_funcs = [g] * len(model.weights)
    # The seed's backprop differentiates the faulty g as if it were a sigmoid ...
    model.layer_derivs = [identify.double_sigmoid_derivative] * len(model.weights)
    # ... and starts from out - Y at the output (averaged over the batch here).
    model.output_delta = lambda fwd, Y: (fwd.out - Y) / len(fwd.out)


def _softmax_wrong_axis(model: "MLP") -> None:
    model.layer_funcs[-1] = identify.softmax_columns


# --- backprop -------------------------------------------------------------------------------


def _derivative_of_activation(model: "MLP") -> None:
    for l in _hidden_layers(model):
        f, df = model.layer_funcs[l], model.layer_derivs[l]
        model.layer_derivs[l] = lambda z, f=f, df=df: df(f(z))


def _missing_derivative(model: "MLP") -> None:
    for l in _hidden_layers(model):
        model.layer_derivs[l] = activations.linear_derivative


def _output_error_as_hidden_delta(model: "MLP") -> None:
    def hidden_delta(l, fwd, deltas):
        error = deltas[-1]  # the OUTPUT layer's delta, not deltas[l + 1] @ W.T
        if error.shape[1] not in (1, fwd.zs[l].shape[1]):
            error = error.sum(axis=1, keepdims=True)  # the only way the shapes would broadcast
        return error * model.layer_derivs[l](fwd.zs[l])

    model.hidden_delta = hidden_delta


def _wrong_layer_activation(model: "MLP") -> None:
    def weight_grad(l, fwd, delta):
        fan_in = fwd.acts[l].shape[1]
        # Another layer's activation of the right width, nearest to the layer's own output.
        others = [j for j in range(len(fwd.acts)) if j != l and fwd.acts[j].shape[1] == fan_in]
        if others:
            j = min(others, key=lambda j: abs(j - (l + 1)))
            return fwd.acts[j].T @ delta
        if l >= 1:  # no other activation fits: the input layer's pre-activation z instead of a
            return fwd.zs[l - 1].T @ delta
        return fwd.acts[l].T @ delta  # first layer of a net where nothing else fits: unaffected

    model.weight_grad = weight_grad


def _gradient_wrong_scale(model: "MLP") -> None:
    canonical = model.output_delta
    # The loss is reported as a mean but differentiated as a sum over the batch.
    model.output_delta = lambda fwd, Y: len(fwd.out) * canonical(fwd, Y)


# --- updates --------------------------------------------------------------------------------


def _wrong_update_sign(model: "MLP") -> None:
    canonical = model.update_param
    model.update_param = lambda key, param, grad: canonical(key, param, -grad)


def _bias_not_updated(model: "MLP") -> None:
    canonical = model.update_param

    def update(key, param, grad):
        return np.zeros_like(param) if key[1] == "bias" else canonical(key, param, grad)

    model.update_param = update


def _scale_lr(factor: float) -> Callable[["MLP"], None]:
    def apply(model: "MLP") -> None:
        model.lr *= factor

    return apply


# --- parameters -------------------------------------------------------------------------------


def _no_bias(model: "MLP") -> None:
    model.use_bias = False
    model.biases = [None] * len(model.weights)


def _uniform01_init(model: "MLP") -> None:
    model.initialise(lambda fan_in, fan_out: (model.rng.random((fan_in, fan_out)), model.rng.random(fan_out)))


def _zero_init(model: "MLP") -> None:
    model.initialise(lambda fan_in, fan_out: (np.zeros((fan_in, fan_out)), np.zeros(fan_out)))


_CATALOGUE = [
    Fault(
        "double_sigmoid",
        "sigmoid applied twice: 1/(1+expit(-x)), outputs confined to (0.5, 1)",
        """\
The seed's bug. ``scipy.special.expit`` already is the sigmoid; wrapping it in
1/(1+...) again gives a function that maps 0 to 2/3 (1/(1 + 0.5)) and never goes below 0.5::

    def activationFunction(self, vec):
        return 1 / (1 + expit(-vec))          # should be: return expit(vec)

    def outputFunctionDiff(self, layer):      # the 'derivative' of that faulty g
        g = self.activationFunction(self.preactivation_layer_dict[layer])
        return g * (1 - g)

    delta_out = -(one_hot - output)           # out - Y at the output

Targets of 0 are unreachable, every hidden unit feeds 0.5..1 forward, and the
outputs of XOR settle near the same value for every input (ND101, stuck at 0.5 in
the seed). ND303 recognises the function from its value at 0 and its range;
ND601 sees that the targets lie outside that range.""",
        ("ND303", "ND601"),
        _double_sigmoid,
        {"activation": "sigmoid", "output": "sigmoid"},
    ),
    Fault(
        "derivative_of_activation",
        "backprop uses f'(a) with a = f(z) instead of f'(z)",
        """\
The derivative helper expects the pre-activation but is handed the activation::

    def sigmoid_prime(z):
        return sigmoid(z) * (1 - sigmoid(z))

    delta1 = (delta2 @ W2.T) * sigmoid_prime(a1)   # should be sigmoid_prime(z1),
                                                   # or a1 * (1 - a1)

sigmoid'(sigmoid(z)) stays within 0.235..0.25 whatever z is, so saturated units
keep receiving full-size gradients and the hidden-layer gradients are wrong.
ND304 identifies the derivative as sigmoid'(sigmoid(z)); the gradient check
(ND203) disagrees with finite differences. Invisible for relu/leaky_relu, whose
derivative has the same sign pattern at a as at z.""",
        ("ND304", "ND203"),
        _derivative_of_activation,
        {"activation": "sigmoid"},
    ),
    Fault(
        "missing_derivative",
        "the activation's derivative is left out of the hidden delta",
        """\
The error is pushed back through the weights but not through the activation::

    dZ2 = A2 - Y
    dZ1 = W2.T @ dZ2                    # should be: (W2.T @ dZ2) * (1 - A1**2)

Backprop then treats every hidden layer as linear: the gradients point in a wrong
direction and never shrink for saturated units. ND304 sees a derivative that is
constantly 1; the gradient check (ND203) disagrees with finite differences.""",
        ("ND304", "ND203"),
        _missing_derivative,
    ),
    Fault(
        "output_error_as_hidden_delta",
        "hidden deltas computed from the output error instead of back-propagated",
        """\
The hidden layer reuses the output error without passing it back through W::

    d_out = (y_hat - y) / n
    d_hidden = d_out * (1 - h ** 2)       # should be: (d_out @ W2.T) * (1 - h ** 2)

With one output unit the shapes broadcast silently, so nothing crashes; every
hidden unit gets the same error signal whatever its outgoing weight, its sign
included. The gradient check (ND203) names the first layer whose gradient
disagrees with finite differences.""",
        ("ND203",),
        _output_error_as_hidden_delta,
    ),
    Fault(
        "wrong_layer_activation",
        "the weight gradient uses another layer's activation",
        """\
The outer product that gives dL/dW takes the wrong layer's activations::

    dW2 = A2.T @ dZ2        # should be A1.T @ dZ2 (the layer's INPUT)
    dW2 = Z1.T @ dZ2        # or: pre-activation where the activation belongs

The first form only runs when the shapes happen to match (as in a 2-2-2-2
network); the reference MLP uses another layer's activation when one has the
right width and otherwise the input layer's pre-activation Z instead of its
activation A (the first layer of such a net stays correct: only X fits there).
The gradient check (ND203) names the first wrong layer.""",
        ("ND203",),
        _wrong_layer_activation,
    ),
    Fault(
        "gradient_wrong_scale",
        "gradients summed over the batch while the loss is averaged",
        """\
The loss is a mean, but its gradient is a sum over the samples::

    loss = np.mean((out - y) ** 2)
    dW = X.T @ delta                 # should be X.T @ delta / len(X)

The direction is right, the size is n times too large, so the effective learning
rate depends on the batch size. ND204 sees gradients that agree with finite
differences up to a constant factor. With per-sample batches (n = 1) the bug is
invisible in training; a gradient check on several samples still shows it.""",
        ("ND204",),
        _gradient_wrong_scale,
        {"batch_size": None},
    ),
    Fault(
        "softmax_wrong_axis",
        "softmax normalised over the batch instead of over the classes",
        """\
With samples in rows, softmax must normalise each row::

    e = np.exp(z - z.max())
    return e / e.sum(axis=0)          # should be: e / e.sum(axis=1, keepdims=True)

Each class's column sums to 1 across the batch instead: a sample's outputs depend
on the other samples in the batch and do not sum to 1. ND303 recognises the
column-wise softmax; the gradient check (ND203) disagrees too.""",
        ("ND303", "ND203"),
        _softmax_wrong_axis,
        {"output": "softmax", "loss": "ce"},
    ),
    Fault(
        "wrong_update_sign",
        "parameters move along +gradient (ascent)",
        """\
The update adds the gradient instead of subtracting it::

    W += lr * dW                    # should be: W -= lr * dW

(or the error is written Y - out while the update still subtracts). The loss
rises instead of falling. ND503 sees updates pointing uphill (cosine with minus
the gradient is -1); ND105 sees the loss diverge.""",
        ("ND503", "ND105"),
        _wrong_update_sign,
    ),
    Fault(
        "bias_not_updated",
        "biases keep their initial values",
        """\
The bias gradient is computed but never applied::

    W1 -= lr * dW1
    W2 -= lr * dW2                  # b1 -= lr * db1 and b2 -= lr * db2 forgotten

The network trains with frozen offsets; with uniform01 init those are random
positive shifts that push units into saturation. ND404 sees parameters that never
change while their gradient is not zero.""",
        ("ND404",),
        _bias_not_updated,
    ),
    Fault(
        "no_bias",
        "layers have no bias at all",
        """\
The layers compute ``z = x @ W`` with no bias term::

    h = sigmoid(x @ W1)             # should be: sigmoid(x @ W1 + b1)

An all-zero input then gives z = 0 in the first layer whatever its weights; with
tanh/relu hidden units (f(0) = 0) that repeats up to the output, which stays at
f(0) (0.5 for a sigmoid output), so XOR's (0, 0) never reaches its target of 0.
ND405 flags the missing bias.""",
        ("ND405",),
        _no_bias,
    ),
    Fault(
        "uniform01_init",
        "weights and biases drawn from U[0, 1), all positive",
        """\
``rand`` draws from [0, 1), not a range centred on zero::

    W = np.random.rand(n_out, n_in)      # should be e.g. randn(...) * sqrt(1 / n_in)
    b = np.random.rand(n_out, 1)         # biases: zeros

All units start as positively correlated copies of each other and large fan-ins
push sigmoid units straight into saturation. ND402 flags layers whose weights all
have one sign.""",
        ("ND402",),
        _uniform01_init,
    ),
    Fault(
        "zero_init",
        "all weights (and biases) start at zero",
        """\
Zeros look like a neutral start::

    W1 = np.zeros((n_in, n_hidden))      # should be random, e.g. Glorot

Every hidden unit computes the same function and receives the same gradient, so
the symmetry is never broken and the layer acts like a single unit. ND401 flags
layers whose units are identical.""",
        ("ND401",),
        _zero_init,
    ),
    Fault(
        "lr_too_high",
        "learning rate 1000x the configured one",
        """\
A learning rate meant for another scale (or a missing division by the batch size)::

    lr = 100.0                       # a useful value here is around 0.1

Each update changes the weights by a large fraction of their size: the loss jumps,
units saturate, numbers may overflow. ND501 flags an update/weight ratio far above
~1e-3.""",
        ("ND501",),
        _scale_lr(1e3),
    ),
    Fault(
        "lr_too_low",
        "learning rate 1e-4x the configured one",
        """\
A learning rate several orders of magnitude too small::

    lr = 1e-5                        # a useful value here is around 0.1

Nothing is wrong with the gradients; the weights just barely move and the loss
looks flat. ND502 flags an update/weight ratio far below ~1e-3.""",
        ("ND502",),
        _scale_lr(1e-4),
    ),
]

FAULTS: dict[str, Fault] = {fault.name: fault for fault in _CATALOGUE}


def get(name: str) -> Fault:
    try:
        return FAULTS[name]
    except KeyError:
        raise ValueError(f"unknown fault {name!r}; expected one of: {', '.join(FAULTS)}") from None
