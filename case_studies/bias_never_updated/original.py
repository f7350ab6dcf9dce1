# Learn y = x^2 on [-1, 1] with a 1-20-1 tanh network and mini-batch gradient descent.
# Samples in rows, weights stored as (n_in, n_out).
import numpy as np

np.random.seed(1)

x = np.random.uniform(-1, 1, size=(200, 1))
y = x ** 2

n_hidden = 20
W1 = np.random.randn(1, n_hidden)
b1 = np.zeros((1, n_hidden))
W2 = np.random.randn(n_hidden, 1) / np.sqrt(n_hidden)
b2 = np.zeros((1, 1))

lr = 0.1
batch_size = 20

for epoch in range(400):
    perm = np.random.permutation(len(x))
    for i in range(0, len(x), batch_size):
        xb = x[perm[i:i + batch_size]]
        yb = y[perm[i:i + batch_size]]

        # forward
        h = np.tanh(xb @ W1 + b1)
        pred = h @ W2 + b2

        # backward (loss = mean squared error)
        dpred = 2 * (pred - yb) / len(xb)
        dW2 = h.T @ dpred
        db2 = dpred.sum(axis=0, keepdims=True)
        dh = dpred @ W2.T * (1 - h ** 2)
        dW1 = xb.T @ dh
        db1 = dh.sum(axis=0, keepdims=True)

        # gradient descent step
        W1 -= lr * dW1
        W2 -= lr * dW2

    if epoch % 40 == 0:
        loss = np.mean((np.tanh(x @ W1 + b1) @ W2 + b2 - y) ** 2)
        print(f"epoch {epoch:3d}  mse {loss:.5f}")

x_test = np.array([[-1.0], [-0.5], [0.0], [0.5], [1.0]])
pred = np.tanh(x_test @ W1 + b1) @ W2 + b2
print("final mse", np.mean((np.tanh(x @ W1 + b1) @ W2 + b2 - y) ** 2))
print("x     :", x_test.ravel())
print("x^2   :", (x_test ** 2).ravel())
print("pred  :", pred.ravel().round(3))
