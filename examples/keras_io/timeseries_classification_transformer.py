"""Classify engine-noise recordings (FordA) with a stack of Transformer encoder blocks.

The series (one feature per step) pass four encoder blocks built with the functional
API: multi-head self-attention and a feed-forward part made of two kernel-size-1
``Conv1D`` layers, each followed by dropout and layer normalization and added back to
its input. The features are averaged over time and a small dense head gives the two
class probabilities. Training stops early and restores the best weights.

After the keras.io example "Timeseries classification with a Transformer model"
(https://keras.io/examples/timeseries/timeseries_classification_transformer/),
written anew for layernet; it runs under Keras 3 with the imports swapped.

Data: the UCR archive's FordA TSV files, read with ``np.loadtxt`` from their URL. With
no network, the block marked "layernet gallery: offline stand-in" reads generated files
of the same layout instead (``_offline_sequences.forda_tsv``) and prints a note;
figures on them say nothing about FordA.

Run it with ``python examples/keras_io/timeseries_classification_transformer.py``;
a short run: ``python examples/keras_io/_short_sequences.py
timeseries_classification_transformer --small-data --samples 128 --epochs 2``.
"""

import numpy as np

import layernet as keras  # under Keras 3: import keras
from layernet import layers  # under Keras 3: from keras import layers

FORDA = "https://raw.githubusercontent.com/hfawaz/cd-diagram/master/FordA/"


def read_series(path_or_url):
    """A UCR TSV file -> (series of shape (n, steps, 1), labels 0/1)."""
    table = np.loadtxt(path_or_url, delimiter="\t")
    return table[:, 1:, np.newaxis], (table[:, 0] > 0).astype(int)


# --- layernet gallery: offline stand-in ---
try:
    x_train, y_train = read_series(FORDA + "FordA_TRAIN.tsv")
    x_test, y_test = read_series(FORDA + "FordA_TEST.tsv")
except OSError:  # no network
    import _offline_sequences

    x_train, y_train = read_series(_offline_sequences.forda_tsv("FordA_TRAIN.tsv"))
    x_test, y_test = read_series(_offline_sequences.forda_tsv("FordA_TEST.tsv"))
# --- end of the offline stand-in ---

order = np.random.default_rng(0).permutation(len(x_train))
x_train, y_train = x_train[order], y_train[order]
print(f"Series: {len(x_train)} to train on, {len(x_test)} to test on, {x_train.shape[1]} steps")


def encoder_block(x, key_dim, heads, hidden, dropout):
    """Attention, then a position-wise feed-forward part; each normalized and added back."""
    attended = layers.MultiHeadAttention(key_dim=key_dim, num_heads=heads, dropout=dropout)(x, x)
    attended = layers.Dropout(dropout)(attended)
    attended = layers.LayerNormalization(epsilon=1e-6)(attended)
    x = x + attended
    expanded = layers.Conv1D(filters=hidden, kernel_size=1, activation="relu")(x)
    expanded = layers.Dropout(dropout)(expanded)
    back = layers.Conv1D(filters=x.shape[-1], kernel_size=1)(expanded)
    back = layers.LayerNormalization(epsilon=1e-6)(back)
    return x + back


def build_model(input_shape, n_classes, blocks=4, key_dim=256, heads=4, hidden=4):
    series = keras.Input(shape=input_shape)
    x = series
    for _ in range(blocks):
        x = encoder_block(x, key_dim, heads, hidden, dropout=0.25)
    x = layers.GlobalAveragePooling1D(data_format="channels_last")(x)
    x = layers.Dense(128, activation="relu")(x)
    x = layers.Dropout(0.4)(x)
    probabilities = layers.Dense(n_classes, activation="softmax")(x)
    return keras.Model(series, probabilities, name="forda_transformer")


model = build_model(x_train.shape[1:], n_classes=len(np.unique(y_train)))
model.compile(
    optimizer=keras.optimizers.Adam(learning_rate=1e-4),
    loss="sparse_categorical_crossentropy",
    metrics=["sparse_categorical_accuracy"],
)
model.summary()
model.fit(
    x_train,
    y_train,
    validation_split=0.2,
    epochs=150,
    batch_size=64,
    callbacks=[keras.callbacks.EarlyStopping(patience=10, restore_best_weights=True)],
)
test_loss, test_accuracy = model.evaluate(x_test, y_test, verbose=1)
print(f"On the test series: accuracy {test_accuracy:.4f}, loss {test_loss:.4f}")
