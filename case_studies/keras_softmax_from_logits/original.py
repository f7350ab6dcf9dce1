# Three kinds of flower from two measurements; the loss was copied from a logits tutorial.
import os
os.environ.setdefault("KERAS_BACKEND", "torch")
import numpy as np
import keras

keras.utils.set_random_seed(0)
rng = np.random.default_rng(1)
centres = np.array([[-1.0, -1.0], [1.0, -0.5], [0.0, 1.2]])
labels = np.repeat(np.arange(3), 60)
features = (centres[labels] + rng.normal(0, 0.35, (180, 2))).astype("float32")

inputs = keras.Input(shape=(2,))
hidden = keras.layers.Dense(12, activation="tanh")(inputs)
probs = keras.layers.Dense(3, activation="softmax")(hidden)
model = keras.Model(inputs, probs)
model.compile(
    optimizer=keras.optimizers.Adam(learning_rate=0.01),
    loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    metrics=["accuracy"],
)
history = model.fit(features, labels, epochs=25, batch_size=36, verbose=0)
print("final_loss", history.history["loss"][-1])
print("final_accuracy", history.history["accuracy"][-1])
