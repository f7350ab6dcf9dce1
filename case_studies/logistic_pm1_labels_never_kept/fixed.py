"""Spam or not: logistic regression on two word-count features.

The labels come as -1 (ham) / +1 (spam) and are mapped to 0 / 1 before training, as a
sigmoid with the cross-entropy gradient X.T @ (p - y) needs.
The prediction is never stored: it lives inside the gradient expression."""
import numpy as np


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def fit(features, labels, lr=0.5, epochs=400):
    weights = np.zeros(features.shape[1])
    bias = 0.0
    n = len(labels)
    for epoch in range(epochs):
        residual = 1.0 / (1.0 + np.exp(-(features @ weights + bias))) - labels
        weights = weights - lr * features.T @ residual / n
        bias = bias - lr * residual.sum() / n
        if epoch % 100 == 0:
            p = sigmoid(features @ weights + bias)     # a forward for the log line only
            print(f"epoch {epoch:3d}  mean p {p.mean():.3f}  min p {p.min():.3f}")
    return weights, bias


rng = np.random.default_rng(11)
ham = rng.normal([-1.0, -0.5], 0.7, (120, 2))
spam = rng.normal([1.0, 0.8], 0.7, (120, 2))
X = np.vstack([ham, spam])
y = np.r_[-np.ones(120), np.ones(120)]

y01 = (y + 1) / 2          # FIX: targets a sigmoid can reach
w, b = fit(X, y01)
p = sigmoid(X @ w + b)
print("accuracy", np.mean((p > 0.5) == (y > 0)))
print("final_p_of_ham", p[y < 0].mean())
