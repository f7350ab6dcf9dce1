"""Two interleaved half-moons, 2-16-1 tanh/sigmoid network, full-batch gradient descent.

Parameters are kept in dicts keyed by layer number; samples are columns; W[l] is (n_l, n_{l-1}).
"""
import numpy as np


def make_moons(rng, n=250, noise=0.12):
    t = rng.uniform(0, np.pi, n)
    upper = np.vstack([np.cos(t), np.sin(t)])
    lower = np.vstack([1 - np.cos(t), 0.5 - np.sin(t)])
    X = np.hstack([upper, lower]) + rng.normal(0, noise, (2, 2 * n))
    Y = np.hstack([np.zeros(n), np.ones(n)]).reshape(1, -1)
    return X, Y


class MoonClassifier:
    def __init__(self, layer_sizes, rng):
        self.L = len(layer_sizes) - 1
        self.W, self.b, self.Z, self.A, self.dW, self.db = {}, {}, {}, {}, {}, {}
        for l in range(1, self.L + 1):
            self.W[l] = rng.normal(0, 1 / np.sqrt(layer_sizes[l - 1]), (layer_sizes[l], layer_sizes[l - 1]))
            self.b[l] = np.zeros((layer_sizes[l], 1))

    def forward(self, X):
        self.A[0] = X
        for l in range(1, self.L + 1):
            self.Z[l] = self.W[l] @ self.A[l - 1] + self.b[l]
            self.A[l] = 1 / (1 + np.exp(-self.Z[l])) if l == self.L else np.tanh(self.Z[l])
        return self.A[self.L]

    def cost(self, Y):
        P = self.A[self.L]
        return float(-np.mean(Y * np.log(P) + (1 - Y) * np.log(1 - P)))

    def backward(self, Y):
        m = Y.shape[1]
        dZ = (self.A[self.L] - Y) / m          # derivative of the mean cross-entropy w.r.t. Z[L]
        for l in range(self.L, 0, -1):
            self.dW[l] = dZ @ self.A[l - 1].T / m
            self.db[l] = np.sum(dZ, axis=1, keepdims=True) / m
            if l > 1:
                dZ = (self.W[l].T @ dZ) * (1 - self.A[l - 1] ** 2)

    def update(self, lr):
        for l in range(1, self.L + 1):
            self.W[l] -= lr * self.dW[l]
            self.b[l] -= lr * self.db[l]


rng = np.random.default_rng(3)
X, Y = make_moons(rng)
model = MoonClassifier([2, 16, 1], rng)

for epoch in range(3000):
    model.forward(X)
    model.backward(Y)
    model.update(lr=1.0)
    if epoch % 300 == 0:
        acc = np.mean((model.A[model.L] > 0.5) == Y)
        print(f"epoch {epoch:4d}  cost {model.cost(Y):.4f}  accuracy {acc:.3f}")

P = model.forward(X)
print("final cost", round(model.cost(Y), 4), " accuracy", np.mean((P > 0.5) == Y))
print("P(class 1) for 3 points of each moon:", P[0, :3].round(3), P[0, -3:].round(3))
