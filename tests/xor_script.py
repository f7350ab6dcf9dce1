"""A tiny NumPy training script for tests that diagnose real code, fast."""

import textwrap

# A tiny module-level NumPy network on XOR: sigmoid hidden layer, sigmoid output, MSE.
# {activation} is the hidden/output function; the seed's bug wraps expit once more.
XOR_SCRIPT = textwrap.dedent('''
    import numpy as np

    def sigmoid(z):
        return 1.0 / (1.0 + np.exp(-z))

    def activation(z):
        return {activation}

    rng = np.random.default_rng(0)
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
    y = np.array([[0], [1], [1], [0]], dtype=float)
    W1 = rng.normal(0.0, 1.0, (2, 8)); b1 = np.zeros(8)
    W2 = rng.normal(0.0, 1.0, (8, 1)); b2 = np.zeros(1)
    for epoch in range(1500):
        h = activation(X @ W1 + b1)
        out = activation(h @ W2 + b2)
        d_out = (out - y) * out * (1 - out)
        d_h = (d_out @ W2.T) * h * (1 - h)
        W2 -= 2.0 * h.T @ d_out; b2 -= 2.0 * d_out.sum(0)
        W1 -= 2.0 * X.T @ d_h; b1 -= 2.0 * d_h.sum(0)
    print(out.ravel().round(2))
''')


def xor_script(activation: str) -> str:
    """The script with `activation` as its hidden and output function (e.g. "sigmoid(z)")."""
    return XOR_SCRIPT.format(activation=activation)
