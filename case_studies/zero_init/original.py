"""Noisy XOR: four clouds of points, label 1 where x*y < 0.

2-8-1 sigmoid network trained with mini-batch gradient descent.
Samples are columns of X; W1 has shape (hidden, inputs).
"""
import numpy as np

np.random.seed(5)


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


class TwoLayerNet:
    def __init__(self, n_in, n_hidden, n_out):
        # start from zero, the optimiser will find the right values
        self.W1 = np.zeros((n_hidden, n_in))
        self.b1 = np.zeros((n_hidden, 1))
        self.W2 = np.zeros((n_out, n_hidden))
        self.b2 = np.zeros((n_out, 1))

    def forward(self, X):
        self.X = X
        self.A1 = sigmoid(self.W1 @ X + self.b1)
        self.A2 = sigmoid(self.W2 @ self.A1 + self.b2)
        return self.A2

    def backward(self, Y, lr):
        m = Y.shape[1]
        dZ2 = self.A2 - Y                                   # cross-entropy with a sigmoid output
        dZ1 = (self.W2.T @ dZ2) * self.A1 * (1 - self.A1)
        self.W2 -= lr * dZ2 @ self.A1.T / m
        self.b2 -= lr * dZ2.mean(axis=1, keepdims=True)
        self.W1 -= lr * dZ1 @ self.X.T / m
        self.b1 -= lr * dZ1.mean(axis=1, keepdims=True)


# four clouds around (+-1, +-1)
n = 50
centers = np.array([[1, 1], [-1, -1], [1, -1], [-1, 1]], dtype=float).T
X = np.concatenate([centers[:, [k]] + 0.3 * np.random.randn(2, n) for k in range(4)], axis=1)
Y = (X[0] * X[1] < 0).astype(float).reshape(1, -1)

net = TwoLayerNet(2, 8, 1)
lr, batch_size = 1.0, 20
for epoch in range(301):
    idx = np.random.permutation(X.shape[1])
    for s in range(0, X.shape[1], batch_size):
        cols = idx[s:s + batch_size]
        net.forward(X[:, cols])
        net.backward(Y[:, cols], lr)
    if epoch % 30 == 0:
        P = net.forward(X)
        loss = -np.mean(Y * np.log(P) + (1 - Y) * np.log(1 - P))
        print("epoch %3d  loss %.4f  acc %.3f" % (epoch, loss, np.mean((P > 0.5) == Y)))

P = net.forward(X)
print("final accuracy:", np.mean((P > 0.5) == Y))
print("P(label 1) at the four centres:", net.forward(centers).round(3).ravel())
print("hidden weights W1:\n", net.W1.round(3))
