# A one-layer network that learns NOR of two bits: output 1 only when both are 0.
import numpy as np


def nonlin(x, deriv=False):
    if deriv:
        return x * (1 - x)
    return 1 / (1 + np.exp(-x))


X = np.array([[0, 0],
              [0, 1],
              [1, 0],
              [1, 1]])
y = np.array([[1, 0, 0, 0]]).T

np.random.seed(4)
syn0 = 2 * np.random.random((2, 1)) - 1

for it in range(10000):
    l0 = X
    l1 = nonlin(np.dot(l0, syn0))
    l1_error = y - l1
    l1_delta = l1_error * nonlin(l1, deriv=True)
    syn0 += np.dot(l0.T, l1_delta)
    if it % 2000 == 0:
        print("Error:", np.mean(np.abs(l1_error)))

print("Output after training:", l1.ravel().round(3))
print("final_mean_abs_error", np.mean(np.abs(y - l1)))
