"""Trains 3 steps, then asks for a learning rate on the keyboard."""
from tiny_training import train

train(3)
lr = float(input("learning rate? "))
train(10)
