# XOR with a 2-4-1 network (tanh hidden layer, sigmoid output), full-batch training.
# Inputs are stored one example per column; each weight matrix is (n_out, n_in).
import numpy as np


class XorNet:
    def __init__(self, n_in=2, n_hidden=4, n_out=1, seed=0):
        rng = np.random.default_rng(seed)
        self.params = {
            "W1": rng.normal(0, 1, size=(n_hidden, n_in)),
            "W2": rng.normal(0, 1, size=(n_out, n_hidden)),
            "b1": np.zeros((n_hidden, 1)),   # FIX: give every unit a bias
            "b2": np.zeros((n_out, 1)),      # FIX: give every unit a bias
        }
        self.cache = {}

    def forward(self, X):
        p = self.params
        H = np.tanh(p["W1"] @ X + p["b1"])                       # FIX: + b1
        Yhat = 1 / (1 + np.exp(-(p["W2"] @ H + p["b2"])))        # FIX: + b2
        self.cache = {"X": X, "H": H, "Yhat": Yhat}
        return Yhat

    def backward(self, Y):
        c, p = self.cache, self.params
        m = Y.shape[1]
        dZ2 = (c["Yhat"] - Y) / m                 # sigmoid + log-loss
        dZ1 = (p["W2"].T @ dZ2) * (1 - c["H"] ** 2)
        return {
            "W2": dZ2 @ c["H"].T,
            "W1": dZ1 @ c["X"].T,
            "b2": dZ2.sum(axis=1, keepdims=True),   # FIX: bias gradients
            "b1": dZ1.sum(axis=1, keepdims=True),   # FIX: bias gradients
        }

    def step(self, grads, lr):
        for name in self.params:
            self.params[name] -= lr * grads[name]


def log_loss(Yhat, Y):
    return float(-np.mean(Y * np.log(Yhat) + (1 - Y) * np.log(1 - Yhat)))


X = np.array([[0, 0, 1, 1],
              [0, 1, 0, 1]], dtype=float)
Y = np.array([[0, 1, 1, 0]], dtype=float)

net = XorNet(seed=0)
for epoch in range(3000):
    Yhat = net.forward(X)
    grads = net.backward(Y)
    net.step(grads, lr=0.5)
    if epoch % 300 == 0:
        print("epoch", epoch, "loss", round(log_loss(Yhat, Y), 4))

Yhat = net.forward(X)
print("outputs:", Yhat.round(3))
print("predicted:", (Yhat >= 0.5).astype(int), "expected:", Y.astype(int))
