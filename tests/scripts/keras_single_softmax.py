"""A Keras model with Dense(1, softmax) (tests: ND703); `-- sigmoid` trains."""
import os
import sys

os.environ.setdefault("KERAS_BACKEND", "torch")
import keras
import numpy as np

keras.utils.set_random_seed(0)
X = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]] * 2)
y = np.array([0, 1, 1, 1] * 2)
out = sys.argv[1] if len(sys.argv) > 1 else "softmax"
model = keras.Sequential([keras.Input(shape=(2,)), keras.layers.Dense(8, activation="tanh"),
                          keras.layers.Dense(1, activation=out)])
model.compile(optimizer=keras.optimizers.Adam(0.05), loss="binary_crossentropy")
model.fit(X, y, epochs=60, batch_size=8, verbose=0)
print("final_loss", float(model.evaluate(X, y, verbose=0)))
