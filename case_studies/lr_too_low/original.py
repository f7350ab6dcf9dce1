# Softmax classifier with one hidden layer (tanh) on three Gaussian blobs.
# Full-batch gradient descent; samples in rows, weights (n_in, n_out).
import numpy as np

rng = np.random.default_rng(11)

n_per_class = 50
means = np.array([[0.0, 3.0], [-3.0, -2.0], [3.0, -2.0]])
X = np.vstack([m + rng.normal(0, 1.0, size=(n_per_class, 2)) for m in means])
labels = np.repeat([0, 1, 2], n_per_class)
Y = np.eye(3)[labels]
N = len(X)

W1 = rng.normal(0, 0.1, size=(2, 16))
b1 = np.zeros(16)
W2 = rng.normal(0, 0.1, size=(16, 3))
b2 = np.zeros(3)

learning_rate = 1e-5   # small and safe

for step in range(2001):
    H = np.tanh(X @ W1 + b1)
    scores = H @ W2 + b2
    scores -= scores.max(axis=1, keepdims=True)
    probs = np.exp(scores) / np.exp(scores).sum(axis=1, keepdims=True)
    loss = -np.mean(np.log(probs[np.arange(N), labels]))

    dscores = (probs - Y) / N
    dW2 = H.T @ dscores
    db2 = dscores.sum(axis=0)
    dH = dscores @ W2.T
    dZ1 = dH * (1 - H ** 2)
    dW1 = X.T @ dZ1
    db1 = dZ1.sum(axis=0)

    W1 -= learning_rate * dW1
    b1 -= learning_rate * db1
    W2 -= learning_rate * dW2
    b2 -= learning_rate * db2

    if step % 200 == 0:
        acc = np.mean(probs.argmax(axis=1) == labels)
        print(f"step {step:4d}: loss = {loss:.5f}, accuracy = {acc:.3f}")

print("final probabilities for one point of each class:")
print(probs[[0, 50, 100]].round(3))
print("predicted:", probs[[0, 50, 100]].argmax(axis=1), "true:", labels[[0, 50, 100]])
