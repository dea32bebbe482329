"""Classify engine-noise recordings (FordA) with a small fully convolutional network.

Each FordA sample is one univariate series (500 steps) labelled -1 or 1: whether the
engine has a certain fault. The labels are mapped to 0/1, the series get a channel axis,
and three ``Conv1D`` + ``BatchNormalization`` + ReLU stages, a global average over time
and a softmax layer classify them. Training keeps the best model on disk
(``ModelCheckpoint`` to a ``.keras`` file), lowers the learning rate when the validation
loss stalls (``ReduceLROnPlateau``) and stops when it no longer improves
(``EarlyStopping``); the saved model is then loaded back with
``keras.models.load_model`` and scored on the test series.

After the keras.io example "Timeseries classification from scratch"
(https://keras.io/examples/timeseries/timeseries_classification_from_scratch/),
written anew for layernet; it runs under Keras 3 with the imports swapped.

Data: the UCR archive's FordA TSV files (first column the label, then the series),
read with ``np.loadtxt`` from their URL. With no network, the block marked
"layernet gallery: offline stand-in" reads generated files of the same layout instead
(``_offline_sequences.forda_tsv``) and prints a note; figures on them say nothing
about FordA.

Run it with ``python examples/keras_io/timeseries_classification_from_scratch.py``;
a short run: ``python examples/keras_io/_short_sequences.py
timeseries_classification_from_scratch --small-data --samples 360 --epochs 40``.
"""

import matplotlib.pyplot as plt
import numpy as np

import layernet as keras  # under Keras 3: import keras

FORDA = "https://raw.githubusercontent.com/hfawaz/cd-diagram/master/FordA/"
BEST_MODEL = "best_model.keras"


def read_series(path_or_url):
    """A UCR TSV file -> (series of shape (n, steps, 1), labels 0/1)."""
    table = np.loadtxt(path_or_url, delimiter="\t")
    labels = (table[:, 0] > 0).astype(int)  # -1 -> 0, 1 -> 1
    return table[:, 1:, np.newaxis], labels


# --- layernet gallery: offline stand-in ---
try:
    x_train, y_train = read_series(FORDA + "FordA_TRAIN.tsv")
    x_test, y_test = read_series(FORDA + "FordA_TEST.tsv")
except OSError:  # no network
    import _offline_sequences

    x_train, y_train = read_series(_offline_sequences.forda_tsv("FordA_TRAIN.tsv"))
    x_test, y_test = read_series(_offline_sequences.forda_tsv("FordA_TEST.tsv"))
# --- end of the offline stand-in ---

n_classes = len(np.unique(y_train))
print(f"Series: {len(x_train)} to train on, {len(x_test)} to test on, {x_train.shape[1]} steps")

# One example of each class.
for label in range(n_classes):
    plt.plot(x_train[y_train == label][0], label=f"class {label}")
plt.legend(loc="best")
plt.title("One FordA series of each class")
plt.show()
plt.close()

# The training file lists the classes in blocks: shuffle it once, so that
# validation_split takes a mix of both.
order = np.random.default_rng(0).permutation(len(x_train))
x_train, y_train = x_train[order], y_train[order]


def conv_stage(x):
    x = keras.layers.Conv1D(filters=64, kernel_size=3, padding="same")(x)
    x = keras.layers.BatchNormalization()(x)
    return keras.layers.ReLU()(x)


series = keras.Input(shape=x_train.shape[1:])
features = conv_stage(conv_stage(conv_stage(series)))
pooled = keras.layers.GlobalAveragePooling1D()(features)
probabilities = keras.layers.Dense(n_classes, activation="softmax")(pooled)
model = keras.Model(series, probabilities, name="fcn_forda")
model.summary()

model.compile(
    optimizer="adam",
    loss="sparse_categorical_crossentropy",
    metrics=["sparse_categorical_accuracy"],
)
history = model.fit(
    x_train,
    y_train,
    batch_size=32,
    epochs=500,
    validation_split=0.2,
    callbacks=[
        keras.callbacks.ModelCheckpoint(BEST_MODEL, monitor="val_loss", save_best_only=True),
        keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=20, min_lr=1e-4),
        keras.callbacks.EarlyStopping(monitor="val_loss", patience=50, verbose=1),
    ],
    verbose=1,
)

best = keras.models.load_model(BEST_MODEL)
test_loss, test_accuracy = best.evaluate(x_test, y_test)
print(f"Best model on the test series: accuracy {test_accuracy:.4f}, loss {test_loss:.4f}")

plt.plot(history.history["sparse_categorical_accuracy"], label="training")
plt.plot(history.history["val_sparse_categorical_accuracy"], label="validation")
plt.xlabel("epoch")
plt.ylabel("accuracy")
plt.legend(loc="best")
plt.show()
plt.close()
