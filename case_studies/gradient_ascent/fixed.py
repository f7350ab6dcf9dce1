"""Three Gaussian blobs, 2-10-3 ReLU/softmax network, mini-batch gradient descent.

Convention: one sample per column, weight matrices are (n_out, n_in).
"""
import numpy as np

rng = np.random.default_rng(7)


def make_blobs(n_per_class=60):
    centers = np.array([[-2.0, 0.0], [2.0, 0.0], [0.0, 2.5]])
    X = np.concatenate([c[:, None] + rng.normal(0, 0.7, size=(2, n_per_class)) for c in centers], axis=1)
    labels = np.repeat(np.arange(3), n_per_class)
    return X, labels


def one_hot(labels, k):
    Y = np.zeros((k, labels.size))
    Y[labels, np.arange(labels.size)] = 1
    return Y


def init(n_x, n_h, n_y):
    W1 = rng.normal(0, np.sqrt(2 / n_x), size=(n_h, n_x))
    b1 = np.zeros((n_h, 1))
    W2 = rng.normal(0, np.sqrt(1 / n_h), size=(n_y, n_h))
    b2 = np.zeros((n_y, 1))
    return W1, b1, W2, b2


def softmax(Z):
    E = np.exp(Z - Z.max(axis=0, keepdims=True))
    return E / E.sum(axis=0, keepdims=True)


def forward(X, W1, b1, W2, b2):
    Z1 = W1 @ X + b1
    A1 = np.maximum(0, Z1)
    P = softmax(W2 @ A1 + b2)
    return Z1, A1, P


def cross_entropy(P, Y):
    return -np.mean(np.sum(Y * np.log(P + 1e-12), axis=0))


def gradients(X, Y, Z1, A1, P, W2):
    m = X.shape[1]
    dZ2 = (P - Y) / m
    dW2 = dZ2 @ A1.T
    db2 = dZ2.sum(axis=1, keepdims=True)
    dZ1 = (W2.T @ dZ2) * (Z1 > 0)
    dW1 = dZ1 @ X.T
    db1 = dZ1.sum(axis=1, keepdims=True)
    return dW1, db1, dW2, db2


def main():
    X, labels = make_blobs()
    Y = one_hot(labels, 3)
    W1, b1, W2, b2 = init(2, 10, 3)
    lr, batch, epochs = 0.1, 30, 100

    for epoch in range(epochs):
        order = rng.permutation(X.shape[1])
        for s in range(0, X.shape[1], batch):
            cols = order[s:s + batch]
            Z1, A1, P = forward(X[:, cols], W1, b1, W2, b2)
            dW1, db1, dW2, db2 = gradients(X[:, cols], Y[:, cols], Z1, A1, P, W2)
            # update the parameters
            W1 -= lr * dW1   # FIX: step against the gradient (descent), not along it
            b1 -= lr * db1   # FIX: step against the gradient (descent), not along it
            W2 -= lr * dW2   # FIX: step against the gradient (descent), not along it
            b2 -= lr * db2   # FIX: step against the gradient (descent), not along it
        if epoch % 10 == 0 or epoch == epochs - 1:
            _, _, P = forward(X, W1, b1, W2, b2)
            acc = np.mean(P.argmax(axis=0) == labels)
            print(f"epoch {epoch:3d}  loss {cross_entropy(P, Y):.4f}  accuracy {acc:.3f}")

    _, _, P = forward(X, W1, b1, W2, b2)
    print("final accuracy", np.mean(P.argmax(axis=0) == labels))
    print("class probabilities of the first sample of each class:")
    print(P[:, [0, 60, 120]].T.round(3))


if __name__ == "__main__":
    main()
