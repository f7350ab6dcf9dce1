"""A correct one-neuron logistic regression trained one sample at a time.

The weights are a column vector and the bias a plain number (self.c = 0); each
sample is a column vector x, the prediction is sigmoid(w.T x + c)."""
import numpy as np


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


class OneNeuron:
    def __init__(self, n_features, seed=0):
        rng = np.random.default_rng(seed)
        self.w = rng.normal(0, 0.1, size=(n_features, 1))
        self.c = 0

    def predict(self, x):
        return sigmoid(np.dot(self.w.T, x) + self.c)

    def fit(self, samples, labels, lr=0.1, epochs=30):
        order = np.arange(len(samples))
        rng = np.random.default_rng(1)
        for epoch in range(epochs):
            rng.shuffle(order)
            total = 0.0
            for i in order:
                x, y = samples[i], labels[i]
                yhat = self.predict(x)
                total += (-(y * np.log(yhat) + (1 - y) * np.log(1 - yhat))).item()
                error = yhat - y
                self.w = self.w - lr * error * x
                self.c = self.c - lr * error.item()
            if epoch % 5 == 0:
                print(f"epoch {epoch:2d}  loss {total / len(samples):.4f}")


rng = np.random.default_rng(12)
features = rng.normal(size=(400, 3))
labels = (features @ np.array([1.5, -2.0, 0.5]) + 0.3 + rng.normal(0, 0.5, 400) > 0).astype(float)
samples = [row.reshape(3, 1) for row in features]

model = OneNeuron(3)
model.fit(samples, labels)
predictions = np.array([model.predict(x).item() > 0.5 for x in samples])
print("final_accuracy", np.mean(predictions == labels))
