"""Inside or outside the unit circle? A 2-8-1 tanh/sigmoid network written as plain
functions: the weights are passed in and handed back, and each layer's bias is the
last row of its weight matrix (a column of ones is appended to the layer's input)."""
import numpy as np


def with_ones(A):
    return np.hstack([A, np.ones((A.shape[0], 1))])


def forward(W1, W2, X):
    H = np.tanh(with_ones(X) @ W1)
    P = 1 / (1 + np.exp(-(with_ones(H) @ W2)))
    return H, P


def gradients(W1, W2, X, y):
    H, P = forward(W1, W2, X)
    dZ2 = (P - y) / len(X)                          # sigmoid + cross-entropy
    dW2 = with_ones(H).T @ dZ2
    dH = (dZ2 @ W2[:-1].T) * (1 - H ** 2)           # the bias row does not feed back
    dW1 = with_ones(X).T @ dH
    return dW1, dW2


def train(W1, W2, X, y, lr, epochs):
    for epoch in range(epochs):
        dW1, dW2 = gradients(W1, W2, X, y)
        W1 = W1 - lr * dW1
        W2 = W2 - lr * dW2
        if epoch % 500 == 0:
            P = forward(W1, W2, X)[1]
            loss = -np.mean(y * np.log(P) + (1 - y) * np.log(1 - P))
            print(f"epoch {epoch:4d}  loss {loss:.4f}  acc {np.mean((P > 0.5) == y):.3f}")
    return W1, W2


rng = np.random.default_rng(1)
X = rng.uniform(-1.6, 1.6, size=(300, 2))
y = (np.sum(X ** 2, axis=1, keepdims=True) < 1.0).astype(float)

n_hidden = 8
W1 = np.zeros((2 + 1, n_hidden))
W2 = np.zeros((n_hidden + 1, 1))
W1, W2 = train(W1, W2, X, y, lr=1.0, epochs=3000)
print("final_accuracy", np.mean((forward(W1, W2, X)[1] > 0.5) == y))
