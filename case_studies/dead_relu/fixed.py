# Three concentric rings (3 classes) with a 2-50-3 ReLU network and a softmax output.
# Full-batch gradient descent; rows are samples; weights are (n_in, n_out).
import numpy as np

rng = np.random.default_rng(1)

# --- data: radius ~0.3, ~0.65 and ~1.0 for classes 0, 1, 2
n = 100
radius = np.concatenate([rng.normal(r, 0.08, n) for r in (0.3, 0.65, 1.0)])
angle = rng.uniform(0, 2 * np.pi, 3 * n)
X = np.column_stack([radius * np.cos(angle), radius * np.sin(angle)])
y = np.repeat([0, 1, 2], n)
Y = np.eye(3)[y]

# --- He initialisation for the ReLU layer
H = 50
W1 = rng.normal(0, np.sqrt(2 / 2), size=(2, H))
b1 = np.zeros(H)
W2 = rng.normal(0, np.sqrt(1 / H), size=(H, 3))
b2 = np.zeros(3)

lr = 1.0    # FIX: 10x smaller; steps of 10 pushed every ReLU unit into z < 0 for all inputs (zero gradient forever)

for it in range(1001):
    Z1 = X @ W1 + b1
    A1 = np.maximum(Z1, 0)
    S = A1 @ W2 + b2
    P = np.exp(S - S.max(axis=1, keepdims=True))
    P /= P.sum(axis=1, keepdims=True)
    loss = -np.mean(np.log(P[np.arange(len(y)), y]))

    dS = (P - Y) / len(y)
    dZ1 = (dS @ W2.T) * (Z1 > 0)
    W2 -= lr * A1.T @ dS
    b2 -= lr * dS.sum(axis=0)
    W1 -= lr * X.T @ dZ1
    b1 -= lr * dZ1.sum(axis=0)

    if it % 100 == 0:
        print(f"iter {it:4d}  loss {loss:.4f}  acc {np.mean(P.argmax(axis=1) == y):.3f}")

print("predicted class counts:", np.bincount(P.argmax(axis=1), minlength=3))
print("P for one point per class:\n", P[[0, n, 2 * n]].round(3))
