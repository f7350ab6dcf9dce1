"""A correct book-style network: parameters are lists of column-vector arrays rebuilt
at every mini-batch, each sample is backpropagated alone and the gradients are summed
over the mini-batch. Training data are (x, y) tuples with one-hot y; test data are
(x, label) tuples."""
import random

import numpy as np


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def sigmoid_prime(z):
    s = sigmoid(z)
    return s * (1 - s)


class Network:
    def __init__(self, sizes):
        self.num_layers = len(sizes)
        self.biases = [np.random.randn(n, 1) for n in sizes[1:]]
        self.weights = [np.random.randn(n_out, n_in) for n_in, n_out in zip(sizes[:-1], sizes[1:])]

    def feedforward(self, a):
        for b, w in zip(self.biases, self.weights):
            a = sigmoid(np.dot(w, a) + b)
        return a

    def SGD(self, training_data, epochs, mini_batch_size, eta, test_data=None):
        n = len(training_data)
        for j in range(epochs):
            random.shuffle(training_data)
            batches = [training_data[k:k + mini_batch_size] for k in range(0, n, mini_batch_size)]
            for batch in batches:
                self.update_mini_batch(batch, eta)
            if test_data:
                print(f"Epoch {j}: {self.evaluate(test_data)} / {len(test_data)}")

    def update_mini_batch(self, batch, eta):
        nabla_b = [np.zeros(b.shape) for b in self.biases]
        nabla_w = [np.zeros(w.shape) for w in self.weights]
        for x, y in batch:
            delta_b, delta_w = self.backprop(x, y)
            nabla_b = [nb + db for nb, db in zip(nabla_b, delta_b)]
            nabla_w = [nw + dw for nw, dw in zip(nabla_w, delta_w)]
        self.weights = [w - (eta / len(batch)) * nw for w, nw in zip(self.weights, nabla_w)]
        self.biases = [b - (eta / len(batch)) * nb for b, nb in zip(self.biases, nabla_b)]

    def backprop(self, x, y):
        activation, activations, zs = x, [x], []
        for b, w in zip(self.biases, self.weights):
            z = np.dot(w, activation) + b
            zs.append(z)
            activation = sigmoid(z)
            activations.append(activation)
        nabla_b = [None] * len(self.biases)
        nabla_w = [None] * len(self.weights)
        delta = (activations[-1] - y) * sigmoid_prime(zs[-1])
        nabla_b[-1] = delta
        nabla_w[-1] = np.dot(delta, activations[-2].T)
        for back in range(2, self.num_layers):
            delta = np.dot(self.weights[-back + 1].T, delta) * sigmoid_prime(zs[-back])
            nabla_b[-back] = delta
            nabla_w[-back] = np.dot(delta, activations[-back - 1].T)
        return nabla_b, nabla_w

    def evaluate(self, test_data):
        return sum(int(np.argmax(self.feedforward(x)) == label) for x, label in test_data)


def make_digits(n, prototypes, noise):
    """Noisy copies of 5 random 16-pixel 'glyphs', in the book's data format."""
    pairs = []
    for _ in range(n):
        label = random.randrange(len(prototypes))
        pixels = np.clip(prototypes[label] + np.random.randn(16) * noise, 0, 1).reshape(16, 1)
        pairs.append((pixels, label))
    return pairs


def one_hot(label, classes=5):
    y = np.zeros((classes, 1))
    y[label] = 1.0
    return y


random.seed(2)
np.random.seed(2)
glyphs = (np.random.rand(5, 16) > 0.5).astype(float)
training_data = [(x, one_hot(label)) for x, label in make_digits(500, glyphs, 0.8)]
test_data = make_digits(200, glyphs, 0.8)

net = Network([16, 12, 5])
net.SGD(training_data, 10, 10, 3.0, test_data=test_data)
print("final_test_accuracy", net.evaluate(test_data) / len(test_data))
