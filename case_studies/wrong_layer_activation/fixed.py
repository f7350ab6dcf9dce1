# A tiny multi-layer perceptron kept as lists of weight matrices, trained on XOR
# one sample at a time (stochastic gradient descent).
import numpy as np

np.random.seed(3)


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


class MLP:
    def __init__(self, sizes):
        # sizes = [inputs, hidden..., outputs]; weights[i] maps layer i -> layer i+1
        self.weights = [np.random.randn(n_in, n_out) for n_in, n_out in zip(sizes[:-1], sizes[1:])]
        self.biases = [np.zeros((1, n_out)) for n_out in sizes[1:]]

    def forward(self, x):
        # activations[0] is the input, activations[-1] the output
        self.activations = [x]
        for i, (W, b) in enumerate(zip(self.weights, self.biases)):
            z = self.activations[-1] @ W + b
            if i == len(self.weights) - 1:
                a = sigmoid(z)      # probability at the output
            else:
                a = np.tanh(z)      # tanh in the hidden layers
            self.activations.append(a)
        return self.activations[-1]

    def backward(self, y, lr):
        # sigmoid output + cross-entropy: dL/dz = output - target
        delta = self.activations[-1] - y
        for i in reversed(range(len(self.weights))):
            grad_W = self.activations[i].T @ delta   # FIX: the layer's input is activations[i], not its output [i + 1]
            grad_b = delta
            if i > 0:
                # delta for the layer below (tanh' = 1 - a^2)
                delta = (delta @ self.weights[i].T) * (1 - self.activations[i] ** 2)
            self.weights[i] -= lr * grad_W
            self.biases[i] -= lr * grad_b

    def train(self, X, Y, epochs, lr):
        for epoch in range(epochs):
            total = 0.0
            for k in np.random.permutation(len(X)):
                x, y = X[k:k + 1], Y[k:k + 1]
                p = self.forward(x)
                total += -np.sum(y * np.log(p) + (1 - y) * np.log(1 - p))
                self.backward(y, lr)
            if epoch % 200 == 0:
                print(f"epoch {epoch:4d}  avg log-loss {total / len(X):.4f}")


X = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
Y = np.array([[0.0], [1.0], [1.0], [0.0]])

net = MLP([2, 2, 1])
net.train(X, Y, epochs=2000, lr=0.1)

for x, y in zip(X, Y):
    p = net.forward(x[None, :])[0, 0]
    print(f"{x} -> {p:.3f}  (target {y[0]:.0f})")
