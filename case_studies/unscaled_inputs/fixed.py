"""Is a house 'expensive'? Features: living area (square feet) and age (years).

2-10-1 sigmoid network, mini-batch gradient descent, binary cross-entropy.
Weights are stored (out_features, in_features) like torch.nn.Linear; samples in rows.
"""
import numpy as np

np.random.seed(3)


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


class HousePriceNet:
    def __init__(self, n_in, n_hidden):
        self.W1 = np.random.randn(n_hidden, n_in)
        self.b1 = np.zeros(n_hidden)
        self.W2 = np.random.randn(1, n_hidden)
        self.b2 = np.zeros(1)

    def forward(self, X):
        self.X = X
        self.h = sigmoid(X @ self.W1.T + self.b1)
        self.p = sigmoid(self.h @ self.W2.T + self.b2)
        return self.p

    def backward(self, y, lr):
        n = len(y)
        dz2 = (self.p - y) / n
        dz1 = (dz2 @ self.W2) * self.h * (1 - self.h)
        self.W2 -= lr * dz2.T @ self.h
        self.b2 -= lr * dz2.sum(axis=0)
        self.W1 -= lr * dz1.T @ self.X
        self.b1 -= lr * dz1.sum(axis=0)


# synthetic houses: price grows with area and falls with age
n = 400
area = np.random.uniform(600, 3500, n)          # square feet
age = np.random.uniform(0, 80, n)               # years
price = 150 * area - 2000 * age + np.random.normal(0, 20000, n)
X = np.column_stack([area, age])
X = (X - X.mean(axis=0)) / X.std(axis=0)   # FIX: standardise the features (raw square feet saturate every sigmoid)
y = (price > np.median(price)).astype(float).reshape(-1, 1)

net = HousePriceNet(2, 10)
for epoch in range(200):
    order = np.random.permutation(n)
    for i in range(0, n, 40):
        b = order[i:i + 40]
        net.forward(X[b])
        net.backward(y[b], lr=0.5)
    if epoch % 20 == 0:
        p = net.forward(X)
        bce = -np.mean(y * np.log(p + 1e-9) + (1 - y) * np.log(1 - p + 1e-9))
        print(f"epoch {epoch:3d}  loss {bce:.4f}  accuracy {np.mean((p > 0.5) == y):.3f}")

p = net.forward(X)
print("accuracy:", np.mean((p > 0.5) == y))
for i in range(4):
    print(f"area {area[i]:6.0f} sqft, age {age[i]:4.1f} y -> P(expensive) = {p[i, 0]:.3f}  (label {y[i, 0]:.0f})")
