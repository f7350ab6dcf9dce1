"""Tiny regression: predict y from two (already standardised) features with a
2-16-1 tanh network, full-batch gradient descent on the mean squared error."""
import numpy as np


def make_data(rng, n=100):
    X = rng.normal(size=(n, 2))
    y = 3.0 * X[:, :1] - 2.0 * X[:, 1:] + np.sin(2.0 * X[:, :1]) + 0.1 * rng.normal(size=(n, 1))
    return X, y


def init_params(rng, n_in, n_hidden):
    W1 = rng.normal(0, 1 / np.sqrt(n_in), size=(n_in, n_hidden))
    b1 = np.zeros((1, n_hidden))
    W2 = rng.normal(0, 1 / np.sqrt(n_hidden), size=(n_hidden, 1))
    b2 = np.zeros((1, 1))
    return [W1, b1, W2, b2]


def train_step(params, X, y, lr):
    W1, b1, W2, b2 = params
    n = len(X)
    h = np.tanh(X @ W1 + b1)
    pred = h @ W2 + b2
    err = pred - y
    loss = np.mean(err ** 2)

    d_pred = 2 * err / n
    d_h = (d_pred @ W2.T) * (1 - h ** 2)
    W2 -= lr * h.T @ d_pred
    b2 -= lr * d_pred.sum(axis=0, keepdims=True)
    W1 -= lr * X.T @ d_h
    b1 -= lr * d_h.sum(axis=0, keepdims=True)
    return loss


def predict(params, X):
    W1, b1, W2, b2 = params
    return np.tanh(X @ W1 + b1) @ W2 + b2


def main():
    rng = np.random.default_rng(2)
    X, y = make_data(rng)
    params = init_params(rng, 2, 16)
    lr = 0.05  # FIX: 100x smaller; 5.0 made every step overshoot and the loss blow up

    for epoch in range(1000):
        loss = train_step(params, X, y, lr)
        if epoch % 100 == 0:
            print(f"epoch {epoch:4d}  mse {loss:.4f}")

    print("final mse", np.mean((predict(params, X) - y) ** 2))
    print("targets    :", y[:5].ravel().round(2))
    print("predictions:", predict(params, X[:5]).ravel().round(2))


if __name__ == "__main__":
    main()
