"""The reference multi-layer perceptron: small, readable, every intermediate named.

netdoctor needs a network whose bugs it controls: the canonical version trains
correctly, and :mod:`netdoctor.faults` swaps one piece for the buggy version people
really write (the seed's ``1/(1+expit(-x))``, ``sigmoid'(a)`` instead of
``sigmoid'(z)``, ...). So the pieces backprop is made of are plain attributes that a
fault may replace:

    layer_funcs[l]    z -> a, the activation used in the forward pass
    layer_derivs[l]   z -> f'(z), the factor backprop multiplies dL/da by (hidden layers)
    output_delta      (fwd, Y) -> dL/dz of the output layer
    hidden_delta      (l, fwd, deltas) -> dL/dz of hidden layer l
    weight_grad       (l, fwd, delta) -> dL/dW of layer l
    update_param      (key, param, grad) -> the change to add to the parameter
    draw_params       (fan_in, fan_out) -> (W, b), the initialisation (set via initialise())

Conventions: float64, samples in rows, ``weights[l]`` has shape (fan_in, fan_out),
layers are numbered from 0 in code and named "layer1".."layerL" for people. The
loss is a mean over the batch and every gradient is the gradient of that mean.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable

import numpy as np

from . import activations, losses
from . import faults as fault_catalogue

INITS = ("uniform01", "normal", "xavier", "he", "zeros")
OPTIMIZERS = ("sgd", "momentum", "adam")

Array = np.ndarray


@dataclass
class Forward:
    zs: list[Array]    # pre-activations, one (n, fan_out) array per layer
    acts: list[Array]  # acts[0] = X, acts[l + 1] = layer_funcs[l](zs[l])
    out: Array         # acts[-1]


@dataclass
class Grads:
    dW: list[Array]
    db: list[Array | None]  # None where the layer has no bias
    deltas: list[Array]     # dL/dz per layer


@dataclass
class Updates:
    dW: list[Array]         # the changes actually applied: new - old
    db: list[Array | None]


@dataclass
class StepState:
    """What ``fit`` hands its callback after each update: references, not copies."""

    step: int        # updates made so far, this one included (1 for the first)
    epoch: int
    X: Array         # the batch used for this update
    Y: Array
    fwd: Forward     # the forward pass before the update
    grads: Grads
    updates: Updates
    loss: float      # loss of the batch before the update
    model: "MLP"


def _check_choice(kind: str, value: str, valid: Iterable[str]) -> str:
    valid = tuple(valid)
    if value not in valid:
        raise ValueError(f"unknown {kind} {value!r}; expected one of: {', '.join(valid)}")
    return value


class MLP:
    """A fully connected network trained by backprop, e.g. ``MLP([2, 4, 1], activation="tanh")``.

    ``layers = [n_in, hidden..., n_out]``; hidden activations sigmoid/tanh/relu/leaky_relu;
    outputs sigmoid/softmax/linear; losses mse/bce/ce; inits uniform01 (numpy's ``rand``),
    normal, xavier, he, zeros; optimizers sgd/momentum/adam; ``batch_size`` None = full
    batch, 1 = per sample, k = mini-batches. Same seed, same run, bit for bit.
    """

    def __init__(
        self,
        layers,
        activation: str = "sigmoid",
        output: str = "sigmoid",
        loss: str = "mse",
        init: str = "xavier",
        optimizer: str = "sgd",
        lr: float = 0.1,
        batch_size: int | None = None,
        seed: int = 0,
        faults: Iterable[str] | str = (),
        momentum: float = 0.9,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
    ):
        self.layers = [int(n) for n in layers]
        if len(self.layers) < 2 or min(self.layers) < 1:
            raise ValueError(f"layers must be [n_in, ..., n_out] with every size >= 1, got {layers!r}")
        # The declared configuration: what the user asked for, never changed by faults
        # (except lr, the rate actually used, which the lr faults scale).
        self.activation = _check_choice("activation", activation, activations.HIDDEN)
        self.output = _check_choice("output", output, activations.OUTPUTS)
        self.loss = _check_choice("loss", loss, losses.LOSSES)
        self.init = _check_choice("init", init, INITS)
        self.optimizer = _check_choice("optimizer", optimizer, OPTIMIZERS)
        if batch_size is not None and int(batch_size) < 1:
            raise ValueError(f"batch_size must be None (full batch) or >= 1, got {batch_size!r}")
        self.batch_size = None if batch_size is None else int(batch_size)
        self.lr = float(lr)
        self.seed = int(seed)
        self.momentum, self.betas, self.eps = float(momentum), tuple(betas), float(eps)
        self.faults = (faults,) if isinstance(faults, str) else tuple(faults)
        for name in self.faults:
            _check_choice("fault", name, fault_catalogue.FAULTS)

        n_layers = len(self.layers) - 1
        self.layer_names = [f"layer{l + 1}" for l in range(n_layers)]
        self.step = 0

        # The canonical pieces (see the module docstring); faults may replace them.
        self.layer_funcs = [activations.get(self.declared_activation(l)).function for l in range(n_layers)]
        self.layer_derivs = [activations.get(self.declared_activation(l)).derivative for l in range(n_layers)]
        self.output_delta = self._output_delta
        self.hidden_delta = self._hidden_delta
        self.weight_grad = self._weight_grad
        self.update_param = self._optimizer_step
        self.use_bias = True
        self.initialise(self._draw_declared)

        for name in self.faults:
            fault_catalogue.FAULTS[name].apply(self)
        self._reset_optimizer()

    # -- configuration ---------------------------------------------------------------
    def declared_activation(self, l: int) -> str:
        return self.output if l == len(self.layer_names) - 1 else self.activation

    def layer_function(self, l: int) -> Callable[[Array], Array]:
        return self.layer_funcs[l]

    def derivative_function(self, l: int) -> Callable[[Array], Array]:
        # For the output layer this is the elementwise derivative of the output function
        # (the Jacobian's diagonal for softmax); backprop there goes through output_delta.
        return self.layer_derivs[l]

    # -- initialisation ----------------------------------------------------------------
    def initialise(self, draw: Callable[[int, int], tuple[Array, Array]]) -> None:
        """(Re)draw all parameters with `draw`, from a generator freshly seeded with
        `self.seed`, so a fault that changes the init leaves runs reproducible."""
        self.draw_params = draw
        self.rng = np.random.default_rng(self.seed)
        self.weights, self.biases = [], []
        for fan_in, fan_out in zip(self.layers[:-1], self.layers[1:]):
            W, b = draw(fan_in, fan_out)
            self.weights.append(W)
            self.biases.append(b if self.use_bias else None)

    def _draw_declared(self, fan_in: int, fan_out: int) -> tuple[Array, Array]:
        rng, shape, zero_bias = self.rng, (fan_in, fan_out), np.zeros(fan_out)
        if self.init == "uniform01":  # numpy's rand: every weight AND bias positive
            return rng.random(shape), rng.random(fan_out)
        if self.init == "normal":
            return rng.standard_normal(shape), zero_bias
        if self.init == "xavier":  # Glorot uniform: keeps activation variance ~constant for tanh/sigmoid
            limit = np.sqrt(6.0 / (fan_in + fan_out))
            return rng.uniform(-limit, limit, shape), zero_bias
        if self.init == "he":  # variance 2/fan_in compensates relu zeroing half the units
            return rng.standard_normal(shape) * np.sqrt(2.0 / fan_in), zero_bias
        return np.zeros(shape), zero_bias  # "zeros"

    # -- data ----------------------------------------------------------------------------
    def prepare(self, X, y) -> tuple[Array, Array]:
        """Inputs as float64 (n, n_in); targets as float64 (n, n_out).

        Integer class labels become one-hot rows when there are several output units;
        anything that does not fit the layer sizes raises ValueError saying what fits.
        """
        X, Y = self._prepare_X(X), self._prepare_Y(y)
        if len(X) != len(Y):
            raise ValueError(f"X has {len(X)} samples but y has {len(Y)}")
        return X, Y

    def _prepare_X(self, X) -> Array:
        n_in = self.layers[0]
        try:
            X = np.asarray(X, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"X must be numeric, shape (n_samples, {n_in}): {exc}") from None
        if X.ndim == 1 and n_in == 1:
            X = X[:, None]
        elif X.ndim == 1 and X.size == n_in:
            X = X[None, :]  # one sample
        if X.ndim != 2 or X.shape[1] != n_in:
            hint = ""
            if X.ndim == 2 and X.shape[0] == n_in:
                hint = " (samples go in rows: pass X.T)"
            raise ValueError(f"expected X of shape (n_samples, {n_in}), got {X.shape}{hint}")
        if len(X) == 0:
            raise ValueError("X has no samples")
        return X

    def _prepare_Y(self, y) -> Array:
        n_out = self.layers[-1]
        try:
            y = np.asarray(y, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"y must be numeric: {exc}") from None
        expected = f"expected y as {n_out} column(s) (n_samples, {n_out})" + (
            f" or integer class labels 0..{n_out - 1} of shape (n_samples,)" if n_out > 1 else " or (n_samples,)"
        )
        if y.ndim == 2 and y.shape[1] == n_out:
            return y
        if y.ndim == 2 and y.shape[1] == 1:
            y = y[:, 0]
        if y.ndim != 1:
            raise ValueError(f"{expected}, got shape {y.shape}")
        if n_out == 1:
            return y[:, None]
        # Class labels -> one-hot rows.
        labels_ok = np.all(np.isfinite(y)) and np.all(y == np.round(y)) and np.all((y >= 0) & (y < n_out))
        if not labels_ok:
            raise ValueError(f"{expected}; got values {np.unique(y)[:10]} that are not labels 0..{n_out - 1}")
        Y = np.zeros((len(y), n_out))
        Y[np.arange(len(y)), y.astype(np.int64)] = 1.0
        return Y

    # -- forward ---------------------------------------------------------------------------
    def forward(self, X) -> Forward:
        a = np.asarray(X, dtype=np.float64)
        zs, acts = [], [a]
        for W, b, f in zip(self.weights, self.biases, self.layer_funcs):
            z = a @ W
            if b is not None:
                z += b
            a = f(z)
            zs.append(z)
            acts.append(a)
        return Forward(zs, acts, a)

    def loss_of(self, out: Array, Y: Array) -> float:
        return losses.LOSSES[self.loss].value(out, Y)

    # -- backward --------------------------------------------------------------------------
    def backward(self, fwd: Forward, Y: Array) -> Grads:
        n_layers = len(self.weights)
        deltas: list[Array] = [None] * n_layers  # type: ignore[list-item]
        deltas[-1] = self.output_delta(fwd, Y)
        for l in range(n_layers - 2, -1, -1):  # chain rule, output side first
            deltas[l] = self.hidden_delta(l, fwd, deltas)
        dW = [self.weight_grad(l, fwd, deltas[l]) for l in range(n_layers)]
        # z = aW + b: each sample's delta lands on b once, so db sums over the batch.
        db = [None if b is None else d.sum(axis=0) for b, d in zip(self.biases, deltas)]
        return Grads(dW, db, deltas)

    def _output_delta(self, fwd: Forward, Y: Array) -> Array:
        out, n = fwd.out, len(fwd.out)
        # Matched pairs collapse to (out - Y) scaled by the mean: exact, and stable
        # where out saturates (no division by out(1 - out)).
        if self.output == "sigmoid" and self.loss == "bce":
            return (out - Y) / out.size
        if self.output == "softmax" and self.loss == "ce":
            return (out - Y) / n
        grad_out = losses.LOSSES[self.loss].gradient(out, Y)
        if self.output == "softmax":
            return activations.softmax_backward(out, grad_out)
        return grad_out * self.layer_derivs[-1](fwd.zs[-1])

    def _hidden_delta(self, l: int, fwd: Forward, deltas: list[Array]) -> Array:
        # dL/da_l arrives through the next layer's weights, then f'(z_l) per unit.
        return (deltas[l + 1] @ self.weights[l + 1].T) * self.layer_derivs[l](fwd.zs[l])

    def _weight_grad(self, l: int, fwd: Forward, delta: Array) -> Array:
        # z_l = a_{l-1} W_l: the layer's INPUT activation times its delta, summed over samples.
        return fwd.acts[l].T @ delta

    # -- update ----------------------------------------------------------------------------
    def _reset_optimizer(self) -> None:
        self._state: dict[tuple[int, str], dict[str, Array]] = {}
        self._t = 0  # optimizer time step (Adam's bias correction)

    def _optimizer_step(self, key: tuple[int, str], param: Array, grad: Array) -> Array:
        """The change to add to `param`, given its gradient, for the configured optimizer."""
        if self.optimizer == "sgd":
            return -self.lr * grad
        state = self._state.setdefault(key, {})
        if self.optimizer == "momentum":  # velocity remembers past gradients
            velocity = self.momentum * state.get("v", 0.0) - self.lr * grad
            state["v"] = velocity
            return velocity
        # Adam: per-entry step size from running mean and variance of the gradient.
        beta1, beta2 = self.betas
        m = beta1 * state.get("m", 0.0) + (1.0 - beta1) * grad
        v = beta2 * state.get("v", 0.0) + (1.0 - beta2) * grad * grad
        state["m"], state["v"] = m, v
        m_hat = m / (1.0 - beta1**self._t)  # early steps would be biased toward 0
        v_hat = v / (1.0 - beta2**self._t)
        return -self.lr * m_hat / (np.sqrt(v_hat) + self.eps)

    def apply(self, grads: Grads) -> Updates:
        self._t += 1
        dW, db = [], []
        for l, (W, b) in enumerate(zip(self.weights, self.biases)):
            change = self.update_param((l, "weight"), W, grads.dW[l])
            W += change  # in place: params() hands out live references
            dW.append(change)
            if b is None:
                db.append(None)
                continue
            change = self.update_param((l, "bias"), b, grads.db[l])
            b += change
            db.append(change)
        self.step += 1
        return Updates(dW, db)

    # -- training --------------------------------------------------------------------------
    def fit(self, X, y, epochs: int, callback: Callable[[StepState], None] | None = None) -> "MLP":
        X, Y = self.prepare(X, y)
        n = len(X)
        for epoch in range(int(epochs)):
            if self.batch_size is None:
                batches = ((X, Y),)
            else:  # a fresh order each epoch, as SGD assumes
                order = self.rng.permutation(n)
                batches = (
                    (X[idx], Y[idx])
                    for idx in (order[i : i + self.batch_size] for i in range(0, n, self.batch_size))
                )
            for Xb, Yb in batches:
                fwd = self.forward(Xb)
                grads = self.backward(fwd, Yb)
                updates = self.apply(grads)
                if callback is not None:  # only probes pay for the loss and the state
                    loss = self.loss_of(fwd.out, Yb)
                    callback(StepState(self.step, epoch, Xb, Yb, fwd, grads, updates, loss, self))
        return self

    def predict(self, X) -> Array:
        return self.forward(self._prepare_X(X)).out

    def predict_classes(self, X) -> Array:
        out = self.predict(X)
        if out.shape[1] == 1:
            return (out[:, 0] > 0.5).astype(np.int64)
        return np.argmax(out, axis=1)

    # -- for gradient checks ---------------------------------------------------------------
    def params(self) -> list[tuple[str, str, Array]]:
        """[(layer_name, "weight"|"bias", array), ...] in forward order; live references."""
        found = []
        for name, W, b in zip(self.layer_names, self.weights, self.biases):
            found.append((name, "weight", W))
            if b is not None:
                found.append((name, "bias", b))
        return found

    def loss_at(self, X, Y) -> float:
        X, Y = self.prepare(X, Y)
        return self.loss_of(self.forward(X).out, Y)

    def gradients(self, X, Y) -> list[Array]:
        """Backprop's gradients, in the order of :meth:`params`."""
        X, Y = self.prepare(X, Y)
        grads = self.backward(self.forward(X), Y)
        return [g for dW, db in zip(grads.dW, grads.db) for g in (dW, db) if g is not None]

    def __repr__(self) -> str:
        faults = f", faults={list(self.faults)}" if self.faults else ""
        return (
            f"MLP({self.layers}, activation={self.activation!r}, output={self.output!r}, "
            f"loss={self.loss!r}, init={self.init!r}, optimizer={self.optimizer!r}, lr={self.lr}, "
            f"batch_size={self.batch_size}, seed={self.seed}{faults})"
        )
