# Predict house prices (in dollars) from standardised size and age features.
import os
os.environ.setdefault("KERAS_BACKEND", "torch")
import numpy as np
import keras

keras.utils.set_random_seed(0)
rng = np.random.default_rng(2)
size = rng.normal(0, 1, 300)
age = rng.normal(0, 1, 300)
price = 350_000 + 90_000 * size - 30_000 * age + rng.normal(0, 10_000, 300)
X = np.column_stack([size, age]).astype("float32")
y_mean, y_std = price.mean(), price.std()  # FIX: train on standardised prices
y = ((price - y_mean) / y_std).astype("float32")  # FIX

model = keras.Sequential([keras.Input(shape=(2,)), keras.layers.Dense(16, activation="relu"),
                          keras.layers.Dense(1)])
model.compile(optimizer=keras.optimizers.Adam(learning_rate=0.01), loss="mse")
model.fit(X, y, epochs=30, batch_size=30, verbose=0)
pred = model.predict(X, verbose=0)[:, 0] * y_std + y_mean  # FIX: back to dollars
print("final_rmse_dollars", float(np.sqrt(np.mean((pred - price) ** 2))))
