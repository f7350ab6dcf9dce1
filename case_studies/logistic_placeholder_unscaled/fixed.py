"""Will a customer buy? Logistic regression (one sigmoid neuron) on age and income.

Parameters are kept per layer, Nielsen-style, with an empty placeholder for the
input layer so that index 1 is the first (and only) real layer."""
import random

import numpy as np

random.seed(11)
np.random.seed(11)


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


class LogisticRegression:
    def __init__(self, n_features):
        self.weights = [np.array([]), np.random.randn(n_features, 1) * 0.01]
        self.biases = [np.array([]), np.zeros((1, 1))]

    def predict(self, inputs):
        X = np.array(inputs, dtype=float)
        return sigmoid(X @ self.weights[1] + self.biases[1])

    def train(self, inputs, targets, lr, epochs):
        X = np.array(inputs, dtype=float)
        y = np.array(targets, dtype=float).reshape(-1, 1)
        for epoch in range(epochs):
            p = sigmoid(X @ self.weights[1] + self.biases[1])
            loss = -np.mean(y * np.log(p + 1e-12) + (1 - y) * np.log(1 - p + 1e-12))
            dz = (p - y) / len(X)
            self.weights[1] = self.weights[1] - lr * X.T @ dz
            self.biases[1] = self.biases[1] - lr * dz.sum(axis=0, keepdims=True)
            if epoch % 100 == 0:
                print(f"epoch {epoch:3d}  loss {loss:.4f}")


# Customers: age in years, yearly income in dollars; buyers are older and richer.
people, bought = [], []
for _ in range(300):
    age = random.uniform(20, 70)
    income = random.uniform(20_000, 120_000)
    score = (age - 45) / 10 + (income - 70_000) / 20_000 + random.gauss(0, 0.5)
    people.append([(age - 45) / 15, (income - 70_000) / 30_000])  # FIX: features near unit scale; raw dollars saturated the sigmoid
    bought.append(1 if score > 0 else 0)

model = LogisticRegression(2)
model.train(people, bought, lr=0.1, epochs=500)
accuracy = np.mean((model.predict(people) > 0.5).ravel() == np.array(bought))
print("final_accuracy", accuracy)
