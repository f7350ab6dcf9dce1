"""Plots its loss and calls plt.show(), which would open a window and wait."""
import matplotlib.pyplot as plt

from tiny_training import train

train(6)
plt.plot([1, 0.5, 0.25])
plt.show()
train(6)
print("after show")
