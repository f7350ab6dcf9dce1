"""Three kinds of sensor readings, told apart by a 4-8-3 sigmoid network.

Mini-batch SGD in the style of the classic book code: parameters are lists of
column-vector arrays, rebuilt at every update; each sample is backpropagated on
its own and the gradients are summed over the mini-batch."""
import random

import numpy as np

random.seed(5)
np.random.seed(5)


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def sigmoid_prime(z):
    """Slope of the sigmoid."""
    return z * (1 - z)


class Net:
    def __init__(self, sizes):
        self.sizes = sizes
        self.biases = [np.random.randn(n, 1) for n in sizes[1:]]
        self.weights = [np.random.randn(n_out, n_in) / np.sqrt(n_in)
                        for n_in, n_out in zip(sizes[:-1], sizes[1:])]

    def feedforward(self, a):
        for w, b in zip(self.weights, self.biases):
            a = sigmoid(w @ a + b)
        return a

    def sgd(self, data, epochs, batch_size, eta):
        for epoch in range(epochs):
            random.shuffle(data)
            for k in range(0, len(data), batch_size):
                self.update_batch(data[k:k + batch_size], eta)
            print(f"epoch {epoch:2d}  accuracy {self.accuracy(data):.3f}")

    def update_batch(self, batch, eta):
        sum_b = [np.zeros(b.shape) for b in self.biases]
        sum_w = [np.zeros(w.shape) for w in self.weights]
        for x, y in batch:
            grad_b, grad_w = self.backprop(x, y)
            sum_b = [s + g for s, g in zip(sum_b, grad_b)]
            sum_w = [s + g for s, g in zip(sum_w, grad_w)]
        self.weights = [w - (eta / len(batch)) * g for w, g in zip(self.weights, sum_w)]
        self.biases = [b - (eta / len(batch)) * g for b, g in zip(self.biases, sum_b)]

    def backprop(self, x, y):
        activations, zs = [x], []
        for w, b in zip(self.weights, self.biases):
            zs.append(w @ activations[-1] + b)
            activations.append(sigmoid(zs[-1]))
        grad_b = [None] * len(self.biases)
        grad_w = [None] * len(self.weights)
        delta = (activations[-1] - y) * sigmoid_prime(zs[-1])
        for layer in range(len(self.weights) - 1, -1, -1):
            grad_b[layer] = delta
            grad_w[layer] = delta @ activations[layer].T
            if layer > 0:
                delta = (self.weights[layer].T @ delta) * sigmoid_prime(zs[layer - 1])
        return grad_b, grad_w

    def accuracy(self, data):
        return np.mean([np.argmax(self.feedforward(x)) == np.argmax(y) for x, y in data])


def make_data(n_per_class):
    centres = np.random.randn(3, 4) * 1.5
    data = []
    for label, centre in enumerate(centres):
        for _ in range(n_per_class):
            x = (centre + np.random.randn(4) * 0.7).reshape(4, 1)
            y = np.zeros((3, 1))
            y[label] = 1.0
            data.append((x, y))
    return data


training_data = make_data(100)
net = Net([4, 8, 3])
net.sgd(training_data, epochs=20, batch_size=10, eta=3.0)
print("final_accuracy", net.accuracy(training_data))
