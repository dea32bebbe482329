"""Tell positive from negative movie reviews with two stacked bidirectional LSTMs.

The reviews arrive as lists of word indices. Only the 20,000 most frequent words are
kept and every review is cut or padded to 200 words; an ``Embedding`` feeds two
``Bidirectional(LSTM)`` layers (the first returns its whole sequence) and a single
sigmoid unit gives the probability that a review is positive.

After the keras.io example "Bidirectional LSTM on IMDB"
(https://keras.io/examples/nlp/bidirectional_lstm_imdb/), written anew for layernet;
it runs under Keras 3 with the imports swapped.

Data: ``keras.datasets.imdb.load_data`` reads ``imdb.npz`` from Keras's cache (or
downloads it). With neither a network nor a cached copy, the block marked
"layernet gallery: offline stand-in" generates reviews of the same format
(``_offline_sequences.imdb``) and prints a note; figures on them say nothing about IMDB.

Run it with ``python examples/keras_io/bidirectional_lstm_imdb.py``; a short run:
``python examples/keras_io/_short_sequences.py bidirectional_lstm_imdb --samples 3000``.
"""

import layernet as keras  # under Keras 3: import keras
from layernet import layers  # under Keras 3: from keras import layers

VOCABULARY = 20_000  # the most frequent words kept; rarer ones become "out of vocabulary"
REVIEW_WORDS = 200  # every review is padded or truncated to this many words
EMBEDDING_SIZE = 128
LSTM_UNITS = 64  # per direction


def build_classifier():
    """Word ids of any length -> probability that the review is positive."""
    words = keras.Input(shape=(None,), dtype="int32", name="word_ids")
    vectors = layers.Embedding(VOCABULARY, EMBEDDING_SIZE)(words)
    per_step = layers.Bidirectional(layers.LSTM(LSTM_UNITS, return_sequences=True))(vectors)
    summary = layers.Bidirectional(layers.LSTM(LSTM_UNITS))(per_step)
    positive = layers.Dense(1, activation="sigmoid")(summary)
    return keras.Model(words, positive, name="bilstm_sentiment")


model = build_classifier()
model.summary()

# --- layernet gallery: offline stand-in ---
try:
    (x_train, y_train), (x_val, y_val) = keras.datasets.imdb.load_data(num_words=VOCABULARY)
except OSError:  # no cached imdb.npz and no network
    import _offline_sequences

    (x_train, y_train), (x_val, y_val) = _offline_sequences.imdb(num_words=VOCABULARY)
# --- end of the offline stand-in ---

print(f"Reviews: {len(x_train)} for training, {len(x_val)} for validation")
# Keep the first REVIEW_WORDS words of each review, and pad short ones at the front.
x_train = keras.utils.pad_sequences(x_train, maxlen=REVIEW_WORDS, truncating="post")
x_val = keras.utils.pad_sequences(x_val, maxlen=REVIEW_WORDS, truncating="post")

model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
model.fit(x_train, y_train, batch_size=32, epochs=2, validation_data=(x_val, y_val))
