"""Three classes of 2-D points, a 2-12-3 sigmoid network with one output per class,
trained on the squared error with mini-batches. The predicted class is the argmax."""
import numpy as np


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def load_data(rng, n_per_class=70):
    centers = np.array([[-2.0, -1.0], [2.0, -1.0], [0.0, 2.0]])
    X = np.vstack([c + 0.8 * rng.standard_normal((n_per_class, 2)) for c in centers])
    labels = np.repeat(np.arange(3), n_per_class)
    return X, labels


def forward(params, X):
    W1, b1, W2, b2 = params
    H = sigmoid(X @ W1 + b1)
    O = sigmoid(H @ W2 + b2)
    return H, O


def train(params, X, T, lr, epochs, batch, rng, labels):
    W1, b1, W2, b2 = params
    for epoch in range(epochs):
        order = rng.permutation(len(X))
        for s in range(0, len(X), batch):
            i = order[s:s + batch]
            H, O = forward(params, X[i])
            dO = (O - T[i]) * O * (1 - O) / len(i)     # squared error through the sigmoid
            dH = (dO @ W2.T) * H * (1 - H)
            W2 -= lr * H.T @ dO
            b2 -= lr * dO.sum(axis=0)
            W1 -= lr * X[i].T @ dH
            b1 -= lr * dH.sum(axis=0)
        if epoch % 25 == 0:
            _, O = forward(params, X)
            print(f"epoch {epoch:3d}  mse {np.mean((O - T) ** 2):.4f}  "
                  f"accuracy {np.mean(O.argmax(axis=1) == labels):.3f}")


def main():
    rng = np.random.default_rng(8)
    X, labels = load_data(rng)
    T = np.eye(3)[labels]                        # FIX: one-hot targets, shape (n, 3), one column per output unit
    params = [rng.normal(0, 1, (2, 12)), np.zeros(12), rng.normal(0, 1, (12, 3)), np.zeros(3)]

    train(params, X, T, lr=2.0, epochs=250, batch=21, rng=rng, labels=labels)

    _, O = forward(params, X)
    print("outputs for one point of each class:\n", O[[0, 70, 140]].round(3))
    print("predicted:", O[[0, 70, 140]].argmax(axis=1), " true:", labels[[0, 70, 140]])
    print("final accuracy:", np.mean(O.argmax(axis=1) == labels))


if __name__ == "__main__":
    main()
