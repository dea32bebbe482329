"""Find anomalies in a metric with a convolutional autoencoder trained on normal days.

Two series of the Numenta Anomaly Benchmark (one value every 5 minutes): a smooth
daily pattern with noise and no anomaly, for training, and the same kind of series with
an abnormal jump, for testing. Both are standardized with the training statistics and
cut into overlapping windows of one day (288 values). A ``Conv1D`` encoder and a
``Conv1DTranspose`` decoder learn to reproduce the normal windows; a window whose mean
absolute reconstruction error exceeds the worst error seen in training is anomalous,
and a value is flagged when every window that contains it is anomalous.

After the keras.io example "Timeseries anomaly detection using an Autoencoder"
(https://keras.io/examples/timeseries/timeseries_anomaly_detection/), written anew for
layernet; it runs under Keras 3 with the imports swapped.

Data: the CSV files ``art_daily_small_noise.csv`` and ``art_daily_jumpsup.csv`` of NAB,
read with pandas from their URL (so pandas is needed; it is not a layernet
dependency). With no network, the block marked "layernet gallery: offline stand-in"
reads generated files of the same layout instead (``_offline_sequences.nab_csv``:
``timestamp,value`` every 5 minutes for 14 days) and prints a note; figures on them say
nothing about NAB.

Run it with ``python examples/keras_io/timeseries_anomaly_detection.py``; a short run:
``python examples/keras_io/_short_sequences.py timeseries_anomaly_detection
--samples 3745 --epochs 5``.
"""

import numpy as np
import pandas as pd
from matplotlib import pyplot as plt

import layernet as keras  # under Keras 3: import keras
from layernet import layers  # under Keras 3: from keras import layers

NAB = "https://raw.githubusercontent.com/numenta/NAB/master/data/"
WINDOW = 288  # one day of 5-minute readings


def read_metric(path_or_url):
    return pd.read_csv(path_or_url, parse_dates=True, index_col="timestamp")


# --- layernet gallery: offline stand-in ---
try:
    normal = read_metric(NAB + "artificialNoAnomaly/art_daily_small_noise.csv")
    with_jump = read_metric(NAB + "artificialWithAnomaly/art_daily_jumpsup.csv")
except OSError:  # no network
    import _offline_sequences

    normal = read_metric(_offline_sequences.nab_csv("art_daily_small_noise.csv"))
    with_jump = read_metric(_offline_sequences.nab_csv("art_daily_jumpsup.csv"))
# --- end of the offline stand-in ---

print(normal.head())
fig, (top, bottom) = plt.subplots(2, 1, sharex=False)
normal.plot(ax=top, legend=False, title="training series (no anomaly)")
with_jump.plot(ax=bottom, legend=False, title="test series (one anomaly)")
plt.show()
plt.close(fig)

# Standardize both series with the training series' statistics.
centre, scale = normal["value"].mean(), normal["value"].std()


def windows(values, width=WINDOW):
    """All overlapping windows of ``width`` consecutive values, shape (n, width, 1)."""
    starts = np.arange(len(values) - width + 1)
    return values[starts[:, None] + np.arange(width)][..., None].astype("float32")


x_train = windows(((normal["value"] - centre) / scale).to_numpy())
print(f"Training windows: {x_train.shape}")

autoencoder = keras.Sequential(
    [
        layers.Input(shape=(WINDOW, 1)),
        layers.Conv1D(32, 7, strides=2, padding="same", activation="relu"),
        layers.Dropout(0.2),
        layers.Conv1D(16, 7, strides=2, padding="same", activation="relu"),
        layers.Conv1DTranspose(16, 7, strides=2, padding="same", activation="relu"),
        layers.Dropout(0.2),
        layers.Conv1DTranspose(32, 7, strides=2, padding="same", activation="relu"),
        layers.Conv1DTranspose(1, 7, padding="same"),
    ],
    name="window_autoencoder",
)
autoencoder.compile(optimizer=keras.optimizers.Adam(learning_rate=0.001), loss="mse")
autoencoder.summary()

# The windows are their own targets.
history = autoencoder.fit(
    x_train,
    x_train,
    epochs=50,
    batch_size=128,
    validation_split=0.1,
    callbacks=[keras.callbacks.EarlyStopping(monitor="val_loss", patience=5, mode="min")],
)
plt.plot(history.history["loss"], label="training")
plt.plot(history.history["val_loss"], label="validation")
plt.legend()
plt.show()
plt.close()

# The largest reconstruction error on normal data is the threshold.
train_errors = np.mean(np.abs(autoencoder.predict(x_train) - x_train), axis=1)[:, 0]
threshold = float(train_errors.max())
print(f"Threshold (largest training error): {threshold:.4f}")
plt.hist(train_errors, bins=50)
plt.xlabel("mean absolute error of a training window")
plt.show()
plt.close()

x_test = windows(((with_jump["value"] - centre) / scale).to_numpy())
x_test_pred = autoencoder.predict(x_test)
test_errors = np.mean(np.abs(x_test_pred - x_test), axis=1)[:, 0]
anomalous = test_errors > threshold
print(f"Anomalous windows: {int(anomalous.sum())} of {len(anomalous)}")

# Value i lies in windows i - WINDOW + 1 ... i: it is flagged when all of them are
# anomalous (a running count of anomalous windows over each value's span).
counts = np.convolve(anomalous.astype(int), np.ones(WINDOW, dtype=int))
flagged = np.flatnonzero(counts[WINDOW - 1 : len(anomalous)] == WINDOW) + WINDOW - 1
print(f"Flagged values: {len(flagged)}")

ax = with_jump.plot(legend=False)
with_jump.iloc[flagged].plot(ax=ax, legend=False, color="r", style=".")
plt.show()
plt.close()
