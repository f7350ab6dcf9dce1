"""Learn y = 3x with one neuron that has a single weight and nothing else."""
import numpy as np

np.random.seed(3)


class Neuron:
    def __init__(self):
        self.weight = np.random.randn()

    def forward(self, x):
        return self.weight * x

    def train(self, x, target, lr):
        out = self.forward(x)
        error = out - target
        grad = 2 * error * x          # d(error^2)/d(weight)
        self.weight -= lr * grad      # FIX: step against the gradient; += climbed the loss
        return error ** 2


xs = np.linspace(-1, 1, 21)
neuron = Neuron()
for epoch in range(40):
    total = 0.0
    for x in xs:
        total += neuron.train(x, 3.0 * x, lr=0.05)
    if epoch % 5 == 0:
        print(f"epoch {epoch:2d}  weight {neuron.weight: .4g}  loss {total / len(xs):.4g}")

print("final_loss", np.mean([(neuron.forward(x) - 3.0 * x) ** 2 for x in xs]))
