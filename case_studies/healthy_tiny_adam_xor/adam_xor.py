"""XOR with a 2-3-1 tanh/sigmoid network and a hand-written Adam optimizer (correct)."""
import sys

import numpy as np

seed = int(sys.argv[1]) if len(sys.argv) > 1 else 0
rng = np.random.default_rng(seed)
X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
Y = np.array([[0], [1], [1], [0]], dtype=float)

W1 = rng.normal(0, 1, (2, 3))
b1 = np.zeros((1, 3))
W2 = rng.normal(0, 1, (3, 1))
b2 = np.zeros((1, 1))
params = [W1, b1, W2, b2]
m = [np.zeros_like(p) for p in params]   # Adam's first moments
v = [np.zeros_like(p) for p in params]   # ... and second moments
lr, beta1, beta2, eps = 0.05, 0.9, 0.999, 1e-8

for t in range(1, 1501):
    h = np.tanh(X @ W1 + b1)
    out = 1 / (1 + np.exp(-(h @ W2 + b2)))
    d_out = (out - Y) / len(X)                  # binary cross-entropy through the sigmoid
    d_h = (d_out @ W2.T) * (1 - h ** 2)
    grads = [X.T @ d_h, d_h.sum(axis=0, keepdims=True), h.T @ d_out, d_out.sum(axis=0, keepdims=True)]
    for p, g, m_p, v_p in zip(params, grads, m, v):
        m_p *= beta1
        m_p += (1 - beta1) * g
        v_p *= beta2
        v_p += (1 - beta2) * g * g
        p -= lr * (m_p / (1 - beta1 ** t)) / (np.sqrt(v_p / (1 - beta2 ** t)) + eps)
    if t % 500 == 0:
        print(f"step {t}: loss {-np.mean(Y * np.log(out) + (1 - Y) * np.log(1 - out)):.5f}")

print("outputs", np.round(out.ravel(), 3))
print("final_loss", float(-np.mean(Y * np.log(out) + (1 - Y) * np.log(1 - out))))
