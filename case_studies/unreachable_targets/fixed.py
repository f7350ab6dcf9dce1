"""Two Gaussian blobs with labels -1 / +1 (as in an SVM tutorial), classified by a
2-8-1 network: ReLU hidden layer, sigmoid output, squared error, per-sample SGD.
Each sample is a column vector; weights are (n_out, n_in)."""
import numpy as np


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def output_activation(z):
    return np.tanh(z)            # FIX: tanh spans (-1, 1); sigmoid's (0, 1) can never reach -1


def output_activation_prime(z):
    return 1.0 - np.tanh(z) ** 2   # FIX: derivative of tanh


def make_blobs(rng, n=100):
    a = rng.normal([[-1.5], [-1.0]], 0.8, size=(2, n))
    b = rng.normal([[1.5], [1.0]], 0.8, size=(2, n))
    X = np.hstack([a, b])
    y = np.hstack([-np.ones(n), np.ones(n)]).reshape(1, -1)   # labels -1 and +1
    return X, y


def predict(params, X):
    W1, b1, W2, b2 = params
    return output_activation(W2 @ np.maximum(W1 @ X + b1, 0) + b2)


def main():
    rng = np.random.default_rng(4)
    X, y = make_blobs(rng)
    W1 = rng.normal(0, 1.0, size=(8, 2))
    b1 = np.zeros((8, 1))
    W2 = rng.normal(0, 0.35, size=(1, 8))
    b2 = np.zeros((1, 1))
    lr = 0.05

    for epoch in range(40):
        for i in rng.permutation(X.shape[1]):
            x, t = X[:, [i]], y[:, [i]]
            z1 = W1 @ x + b1
            h = np.maximum(z1, 0)
            z2 = W2 @ h + b2
            out = output_activation(z2)
            # squared error 0.5 * (out - t)^2
            d2 = (out - t) * output_activation_prime(z2)
            d1 = (W2.T @ d2) * (z1 > 0)
            W2 -= lr * d2 @ h.T
            b2 -= lr * d2
            W1 -= lr * d1 @ x.T
            b1 -= lr * d1
        if epoch % 5 == 0:
            out = predict((W1, b1, W2, b2), X)
            mse = np.mean((out - y) ** 2)
            acc = np.mean(np.where(out > 0, 1, -1) == y)
            print(f"epoch {epoch:2d}  mse {mse:.4f}  accuracy {acc:.3f}")

    out = predict((W1, b1, W2, b2), X)
    print("outputs for 3 points of class -1:", out[0, :3].round(3))
    print("outputs for 3 points of class +1:", out[0, -3:].round(3))
    print("accuracy:", np.mean(np.where(out > 0, 1, -1) == y))


if __name__ == "__main__":
    main()
