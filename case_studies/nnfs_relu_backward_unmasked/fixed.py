"""Three interleaved arms of points, classified by a 2-64-3 ReLU/softmax network built
from layer objects, each with forward() and backward()."""
import numpy as np

np.random.seed(0)


def arms(points_per_class, classes):
    X = np.zeros((points_per_class * classes, 2))
    y = np.zeros(points_per_class * classes, dtype=int)
    for c in range(classes):
        rows = slice(points_per_class * c, points_per_class * (c + 1))
        radius = np.linspace(0.05, 1, points_per_class)
        angle = np.linspace(c * 2.1, c * 2.1 + 3.0, points_per_class) + np.random.randn(points_per_class) * 0.15
        X[rows] = np.column_stack([radius * np.sin(angle), radius * np.cos(angle)])
        y[rows] = c
    return X, y


class Dense:
    def __init__(self, n_inputs, n_neurons):
        self.weights = 0.5 * np.random.randn(n_inputs, n_neurons)
        self.biases = np.zeros((1, n_neurons))

    def forward(self, inputs):
        self.inputs = inputs
        self.output = inputs @ self.weights + self.biases

    def backward(self, dvalues):
        self.dweights = self.inputs.T @ dvalues
        self.dbiases = dvalues.sum(axis=0, keepdims=True)
        self.dinputs = dvalues @ self.weights.T


class ReLU:
    def forward(self, inputs):
        self.inputs = inputs
        self.output = np.maximum(0, inputs)

    def backward(self, dvalues):
        self.dinputs = dvalues.copy()
        self.dinputs[self.inputs <= 0] = 0  # FIX: no gradient flows through a unit that was off


class SoftmaxCrossEntropy:
    def forward(self, inputs, labels):
        shifted = np.exp(inputs - inputs.max(axis=1, keepdims=True))
        self.output = shifted / shifted.sum(axis=1, keepdims=True)
        self.labels = labels
        return -np.mean(np.log(self.output[np.arange(len(labels)), labels] + 1e-12))

    def backward(self):
        self.dinputs = self.output.copy()
        self.dinputs[np.arange(len(self.labels)), self.labels] -= 1
        self.dinputs /= len(self.labels)


class SGD:
    def __init__(self, learning_rate):
        self.learning_rate = learning_rate

    def update(self, layer):
        layer.weights -= self.learning_rate * layer.dweights
        layer.biases -= self.learning_rate * layer.dbiases


X, y = arms(100, 3)
dense1, relu1, dense2 = Dense(2, 64), ReLU(), Dense(64, 3)
head = SoftmaxCrossEntropy()
optimizer = SGD(learning_rate=1.0)

for epoch in range(1001):
    dense1.forward(X)
    relu1.forward(dense1.output)
    dense2.forward(relu1.output)
    loss = head.forward(dense2.output, y)
    accuracy = np.mean(head.output.argmax(axis=1) == y)
    if epoch % 200 == 0:
        print(f"epoch {epoch:4d}  loss {loss:.3f}  acc {accuracy:.3f}")

    head.backward()
    dense2.backward(head.dinputs)
    relu1.backward(dense2.dinputs)
    dense1.backward(relu1.dinputs)
    optimizer.update(dense1)
    optimizer.update(dense2)

print("final_accuracy", accuracy)
