"""Flat prices: fit price = W . [rooms, age, distance] + b by plain gradient descent.

A single linear layer, no hidden units; the bias is a Python float."""
import numpy as np

rng = np.random.default_rng(7)
n = 200
rooms = rng.integers(1, 7, n).astype(float)
age = rng.uniform(0, 60, n)                       # years
distance = rng.uniform(0.5, 25, n)                # km to the centre
X = np.column_stack([rooms, age, distance])
y = (30 * rooms - 0.8 * age - 2.5 * distance + 120 + rng.normal(0, 5, n)).reshape(-1, 1)

W = np.zeros((3, 1))
b = 0.0
lr = 0.05

for epoch in range(300):
    pred = X @ W + b
    err = pred - y
    loss = np.mean(err ** 2)
    W -= lr * X.T @ err / len(X)
    b -= lr * err.mean()
    if epoch % 50 == 0:
        print(f"epoch {epoch:3d}  mse {loss:.4g}")

print("final_mse", np.mean((X @ W + b - y) ** 2))
