"""
Title: Bidirectional LSTM on IMDB
Author: [fchollet](https://twitter.com/fchollet)
Date created: 2020/05/03
Last modified: 2020/05/03
Description: Train a 2-layer bidirectional LSTM on the IMDB movie review sentiment classification dataset.

keras.io: https://keras.io/examples/nlp/bidirectional_lstm_imdb/
Source: keras-team/keras-io, examples/nlp/bidirectional_lstm_imdb.py (Keras 3 version).
Apache License 2.0; only the import lines changed (run by layernet).

Data: `keras.datasets.imdb.load_data` reads Keras's cached `imdb.npz`
(~/.keras/datasets or $KERAS_HOME), downloading it when missing. Offline with no
cached copy, the block marked "layernet gallery: offline stand-in" uses random
reviews of the same format (_offline_sequences.imdb) and prints a note: that block
is the only other change.

    python examples/keras_io/bidirectional_lstm_imdb.py
"""

"""
## Setup
"""

import numpy as np  # noqa: F401 (imported and unused in Keras's script too)
import layernet as keras  # Keras: import keras
from layernet import layers  # Keras: from keras import layers

import _offline_sequences  # layernet gallery: offline stand-in (not in the Keras script)

max_features = 20000  # Only consider the top 20k words
maxlen = 200  # Only consider the first 200 words of each movie review

"""
## Build the model
"""

# Input for variable-length sequences of integers
inputs = keras.Input(shape=(None,), dtype="int32")
# Embed each integer in a 128-dimensional vector
x = layers.Embedding(max_features, 128)(inputs)
# Add 2 bidirectional LSTMs
x = layers.Bidirectional(layers.LSTM(64, return_sequences=True))(x)
x = layers.Bidirectional(layers.LSTM(64))(x)
# Add a classifier
outputs = layers.Dense(1, activation="sigmoid")(x)
model = keras.Model(inputs, outputs)
model.summary()

"""
## Load the IMDB movie review sentiment data
"""

# --- layernet gallery: offline stand-in (not in the Keras script) ---
try:
    (x_train, y_train), (x_val, y_val) = keras.datasets.imdb.load_data(
        num_words=max_features
    )
except OSError:  # not cached, no network
    (x_train, y_train), (x_val, y_val) = _offline_sequences.imdb(num_words=max_features)
# --- end of the offline stand-in ---
print(len(x_train), "Training sequences")
print(len(x_val), "Validation sequences")
# Use pad_sequence to standardize sequence length:
# this will truncate sequences longer than 200 words and zero-pad sequences shorter than 200 words.
x_train = keras.utils.pad_sequences(x_train, maxlen=maxlen)
x_val = keras.utils.pad_sequences(x_val, maxlen=maxlen)

"""
## Train and evaluate the model

You can use the trained model hosted on [Hugging Face Hub](https://huggingface.co/keras-io/bidirectional-lstm-imdb)
and try the demo on [Hugging Face Spaces](https://huggingface.co/spaces/keras-io/bidirectional_lstm_imdb).
"""

model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
model.fit(x_train, y_train, batch_size=32, epochs=2, validation_data=(x_val, y_val))
