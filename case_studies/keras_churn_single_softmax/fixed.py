# A churn classifier in Keras: one probability per customer, 'softmax' on the output unit.
import os
os.environ.setdefault("KERAS_BACKEND", "torch")
import numpy as np
import keras
from keras import layers

keras.utils.set_random_seed(0)
rng = np.random.default_rng(0)
# tenure (years), monthly bill (hundreds), support calls: already on a unit scale
X = np.column_stack([rng.uniform(0, 5, 200), rng.uniform(0.2, 1.5, 200), rng.poisson(1.0, 200)]).astype("float32")
churned = ((X[:, 2] > 1) & (X[:, 0] < 2.5)).astype("float32")

model = keras.Sequential([
    keras.Input(shape=(3,)),
    layers.Dense(16, activation="relu"),
    layers.Dense(1, activation="sigmoid"),  # FIX: a single probability is a sigmoid; softmax over one unit is always 1
])
model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
model.fit(X, churned, epochs=20, batch_size=50, verbose=0)
loss, acc = model.evaluate(X, churned, verbose=0)
print("predictions", np.unique(model.predict(X, verbose=0).round(3)))
print("final_loss", loss)
print("final_accuracy", acc)
