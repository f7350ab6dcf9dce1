# Fit score = m * hours + b by gradient descent, one data point at a time in a loop.
# The slope and the intercept are plain Python floats, handed back as a new pair each step.
import numpy as np


def mean_squared_error(b, m, points):
    total = 0.0
    for hours, score in points:
        total += (score - (m * hours + b)) ** 2
    return total / len(points)


def step_gradient(b, m, points, learning_rate):
    b_grad = 0.0
    m_grad = 0.0
    n = float(len(points))
    for hours, score in points:
        residual = score - (m * hours + b)
        b_grad += -(2 / n) * residual
        m_grad += -(2 / n) * hours * residual
    return [b - learning_rate * b_grad, m - learning_rate * m_grad]


def run(points, b, m, learning_rate, iterations):
    for i in range(iterations):
        b, m = step_gradient(b, m, points, learning_rate)
        if i % 200 == 0:
            print(f"iteration {i:4d}  b {b:7.3f}  m {m:6.3f}  mse {mean_squared_error(b, m, points):.3f}")
    return b, m


rng = np.random.RandomState(6)
hours = rng.uniform(0, 10, 80)
points = np.column_stack([hours, 4.0 * hours + 35 + rng.randn(80) * 3.0])

b, m = run(points, 0.0, 0.0, learning_rate=0.02, iterations=1000)
print(f"b = {b:.3f}, m = {m:.3f}")
print("final_mse", mean_squared_error(b, m, points))
