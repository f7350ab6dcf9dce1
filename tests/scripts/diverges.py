"""A loss that explodes to inf and then NaN."""
from tiny_training import train

train(12, growth=1e60)
