# Classify points inside a circle vs. outside it with a small tanh network.
# Plain script, no functions: data in columns (one column per point), W is (out, in).
import numpy as np

np.random.seed(0)

# ---- data: 200 points in the square [-1, 1]^2, label 1 if inside radius 0.6
m = 200
X = np.random.uniform(-1, 1, size=(2, m))
Y = (np.sum(X ** 2, axis=0, keepdims=True) < 0.6 ** 2).astype(float)   # shape (1, m)

# ---- parameters
n_h = 8
W1 = np.random.randn(n_h, 2) * 0.5
b1 = np.zeros((n_h, 1))
W2 = np.random.randn(1, n_h) * 0.5
b2 = np.zeros((1, 1))
lr = 0.5

for i in range(3001):
    # forward
    Z1 = W1 @ X + b1
    A1 = np.tanh(Z1)
    Z2 = W2 @ A1 + b2
    A2 = 1 / (1 + np.exp(-Z2))

    # binary cross-entropy
    cost = -np.mean(Y * np.log(A2 + 1e-12) + (1 - Y) * np.log(1 - A2 + 1e-12))

    # backward (sigmoid + cross-entropy gives A2 - Y)
    dZ2 = A2 - Y
    dZ1 = W2.T @ dZ2

    # update in place
    W2 -= lr * dZ2 @ A1.T / m
    b2 -= lr * np.sum(dZ2, axis=1, keepdims=True) / m
    W1 -= lr * dZ1 @ X.T / m
    b1 -= lr * np.sum(dZ1, axis=1, keepdims=True) / m

    if i % 300 == 0:
        acc = np.mean((A2 > 0.5) == Y)
        print("iter %4d  cost %.4f  train acc %.3f" % (i, cost, acc))

# final check on a few points
A2 = 1 / (1 + np.exp(-(W2 @ np.tanh(W1 @ X + b1) + b2)))
print("final accuracy:", np.mean((A2 > 0.5) == Y))
test = np.array([[0.0, 0.9, -0.2, 0.7], [0.0, 0.0, 0.1, -0.7]])
p = 1 / (1 + np.exp(-(W2 @ np.tanh(W1 @ test + b1) + b2)))
print("P(inside) at (0,0), (0.9,0), (-0.2,0.1), (0.7,-0.7):", np.round(p.ravel(), 3))
