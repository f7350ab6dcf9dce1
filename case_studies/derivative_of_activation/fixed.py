"""Two-layer sigmoid network for XOR, trained with full-batch gradient descent."""
import numpy as np

np.random.seed(1)


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def sigmoid_prime(z):
    # derivative of the sigmoid: s'(z) = s(z) * (1 - s(z))
    return sigmoid(z) * (1.0 - sigmoid(z))


class NeuralNetwork:
    def __init__(self, n_input, n_hidden, n_output, learning_rate=1.0):
        self.W1 = np.random.randn(n_input, n_hidden)
        self.b1 = np.zeros((1, n_hidden))
        self.W2 = np.random.randn(n_hidden, n_output)
        self.b2 = np.zeros((1, n_output))
        self.lr = learning_rate

    def forward(self, X):
        self.z1 = X @ self.W1 + self.b1
        self.a1 = sigmoid(self.z1)
        self.z2 = self.a1 @ self.W2 + self.b2
        self.a2 = sigmoid(self.z2)
        return self.a2

    def backward(self, X, y):
        m = X.shape[0]
        # error at the output times the slope of the sigmoid
        delta2 = (self.a2 - y) * sigmoid_prime(self.z2)  # FIX: slope at the pre-activation z2, not at a2 = sigmoid(z2)
        dW2 = self.a1.T @ delta2 / m
        db2 = np.sum(delta2, axis=0, keepdims=True) / m

        # push the error back through W2
        delta1 = (delta2 @ self.W2.T) * sigmoid_prime(self.z1)  # FIX: slope at z1, not at a1 = sigmoid(z1)
        dW1 = X.T @ delta1 / m
        db1 = np.sum(delta1, axis=0, keepdims=True) / m

        self.W2 -= self.lr * dW2
        self.b2 -= self.lr * db2
        self.W1 -= self.lr * dW1
        self.b1 -= self.lr * db1

    def loss(self, y):
        return np.mean((self.a2 - y) ** 2)

    def train(self, X, y, epochs):
        for epoch in range(epochs):
            self.forward(X)
            self.backward(X, y)
            if epoch % 500 == 0:
                print(f"epoch {epoch:5d}  loss {self.loss(y):.6f}")


X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
y = np.array([[0], [1], [1], [0]], dtype=float)

nn = NeuralNetwork(2, 3, 1, learning_rate=2.0)
nn.train(X, y, epochs=5000)

out = nn.forward(X)
print("final loss", nn.loss(y))
for xi, oi in zip(X, out):
    print(xi, "->", round(float(oi[0]), 4))
print("predictions:", (out > 0.5).astype(int).ravel(), "targets:", y.ravel().astype(int))
