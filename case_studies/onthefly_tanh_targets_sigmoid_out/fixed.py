"""Teach a small network the shape of tanh on [-2, 2], one random point at a time.

The class takes plain Python lists and turns them into column vectors itself; the
targets are computed on the fly from each input."""
import numpy as np


class neuralNetwork:
    def __init__(self, inputnodes, hiddennodes, outputnodes, learningrate):
        self.inodes, self.hnodes, self.onodes = inputnodes, hiddennodes, outputnodes
        self.lr = learningrate
        self.wih = np.random.normal(0.0, pow(self.inodes, -0.5), (self.hnodes, self.inodes))
        self.who = np.random.normal(0.0, pow(self.hnodes, -0.5), (self.onodes, self.hnodes))
        self.bh = np.zeros((self.hnodes, 1))
        self.bo = np.zeros((self.onodes, 1))
        self.activation_function = lambda x: 1.0 / (1.0 + np.exp(-x))
        self.output_function = np.tanh  # FIX: the targets run from -0.96 to 0.96; a sigmoid output cannot go below 0

    def train(self, inputs_list, targets_list):
        inputs = np.array(inputs_list, ndmin=2).T
        targets = np.array(targets_list, ndmin=2).T

        hidden_outputs = self.activation_function(np.dot(self.wih, inputs) + self.bh)
        final_outputs = self.output_function(np.dot(self.who, hidden_outputs) + self.bo)  # FIX: tanh output

        output_errors = targets - final_outputs
        hidden_errors = np.dot(self.who.T, output_errors)

        output_grad = output_errors * (1.0 - final_outputs ** 2)  # FIX: tanh's slope
        hidden_grad = hidden_errors * hidden_outputs * (1.0 - hidden_outputs)
        self.who += self.lr * np.dot(output_grad, hidden_outputs.T)
        self.bo += self.lr * output_grad
        self.wih += self.lr * np.dot(hidden_grad, inputs.T)
        self.bh += self.lr * hidden_grad

    def query(self, inputs_list):
        inputs = np.array(inputs_list, ndmin=2).T
        hidden_outputs = self.activation_function(np.dot(self.wih, inputs) + self.bh)
        return self.output_function(np.dot(self.who, hidden_outputs) + self.bo)  # FIX: tanh output


np.random.seed(8)
net = neuralNetwork(1, 10, 1, 0.1)
for step in range(12000):
    x = np.random.uniform(-2, 2)
    net.train([x], [np.tanh(x)])
    if step % 3000 == 0:
        grid = np.linspace(-2, 2, 41)
        mse = np.mean([(net.query([g])[0, 0] - np.tanh(g)) ** 2 for g in grid])
        print(f"step {step:5d}  mse {mse:.4f}")

grid = np.linspace(-2, 2, 41)
outputs = np.array([net.query([g])[0, 0] for g in grid])
print("outputs at x = -2, 0, 2:", outputs[[0, 20, 40]].round(3))
print("final_mse", np.mean((outputs - np.tanh(grid)) ** 2))
