"""Three-arm spiral, 2-64-3 ReLU network with a softmax output.

Parameters live in two lists (weights, biases); samples are rows; mini-batches of 32.
"""
import numpy as np

rng = np.random.default_rng(0)


def spiral(n_per_class=80, n_classes=3):
    X, y = [], []
    for k in range(n_classes):
        r = np.linspace(0.05, 1.0, n_per_class)
        t = np.linspace(k * 4.0, (k + 1) * 4.0, n_per_class) + rng.normal(0, 0.2, n_per_class)
        X.append(np.column_stack([r * np.sin(t), r * np.cos(t)]))
        y.append(np.full(n_per_class, k))
    return np.vstack(X), np.concatenate(y)


def softmax(z):
    return np.exp(z) / np.exp(z).sum(axis=0)


class Network:
    def __init__(self, sizes):
        self.weights = [rng.normal(0, np.sqrt(2.0 / a), size=(a, b)) for a, b in zip(sizes[:-1], sizes[1:])]
        self.biases = [np.zeros(b) for b in sizes[1:]]

    def forward(self, X):
        self.zs, self.acts = [], [X]
        a = X
        for i, (W, b) in enumerate(zip(self.weights, self.biases)):
            z = a @ W + b
            a = softmax(z) if i == len(self.weights) - 1 else np.maximum(z, 0)
            self.zs.append(z)
            self.acts.append(a)
        return a

    def backward(self, Y):
        n = len(Y)
        delta = (self.acts[-1] - Y) / n            # softmax + cross-entropy
        grads_W, grads_b = [], []
        for i in reversed(range(len(self.weights))):
            grads_W.insert(0, self.acts[i].T @ delta)
            grads_b.insert(0, delta.sum(axis=0))
            if i > 0:
                delta = (delta @ self.weights[i].T) * (self.zs[i - 1] > 0)
        return grads_W, grads_b

    def sgd_step(self, grads_W, grads_b, lr):
        for i in range(len(self.weights)):
            self.weights[i] -= lr * grads_W[i]
            self.biases[i] -= lr * grads_b[i]


X, labels = spiral()
Y = np.eye(3)[labels]
net = Network([2, 64, 3])

for epoch in range(300):
    order = rng.permutation(len(X))
    for s in range(0, len(X), 32):
        idx = order[s:s + 32]
        net.forward(X[idx])
        net.sgd_step(*net.backward(Y[idx]), lr=0.5)
    if epoch % 30 == 0 or epoch == 299:
        P = net.forward(X)
        loss = -np.mean(np.log(P[np.arange(len(X)), labels] + 1e-12))
        print(f"epoch {epoch:3d}  loss {loss:.4f}  accuracy {np.mean(P.argmax(axis=1) == labels):.3f}")

P = net.forward(X)
print("probabilities of the first 3 points:\n", P[:3].round(4))
print("row sums:", P[:3].sum(axis=1).round(4))
print("final accuracy:", np.mean(P.argmax(axis=1) == labels))
