"""Classify movie reviews with one Transformer encoder block written as custom layers.

Each review (word indices, cut or padded to 200 words) is embedded twice: once by word
and once by position, and the two vectors are added. One encoder block (multi-head
self-attention, then a two-layer feed-forward network, each with a residual connection,
dropout and layer normalization) mixes the words; their average goes through a small
dense head to two softmax classes. Both custom layers are written with ``call()``; the
position embedding is looked up on ``ops.arange`` inside ``call()``.

After the keras.io example "Text classification with Transformer"
(https://keras.io/examples/nlp/text_classification_with_transformer/), written anew
for layernet; it runs under Keras 3 with the imports swapped.

Data: ``keras.datasets.imdb.load_data`` reads ``imdb.npz`` from Keras's cache (or
downloads it). The ``keras`` imported from ``_offline_imdb.py`` is layernet itself,
except that when that file can be neither read nor downloaded, it prints a note and
returns a stand-in of the same format (integer reviews, 0/1 labels; 5,000 reviews a
half, 500 with ``LAYERNET_GALLERY_SHORT=1``). Figures on it say nothing about IMDB.

Run it with ``python examples/keras_io/text_classification_with_transformer.py``.
"""

from _offline_imdb import keras  # under Keras 3: import keras (layernet; IMDB stand-in offline)

from layernet import layers, ops  # under Keras 3: from keras import layers, ops

VOCABULARY = 20_000
REVIEW_WORDS = 200
WIDTH = 32  # size of every word vector
HEADS = 2
HIDDEN = 32  # width of the feed-forward network inside the block


class WordAndPosition(layers.Layer):
    """Word ids -> word vector + position vector (both learned tables)."""

    def __init__(self, length, vocabulary, width, **kwargs):
        super().__init__(**kwargs)
        self.words = layers.Embedding(input_dim=vocabulary, output_dim=width)
        self.places = layers.Embedding(input_dim=length, output_dim=width)

    def call(self, ids):
        steps = ops.arange(start=0, stop=ops.shape(ids)[-1], step=1)
        return self.words(ids) + self.places(steps)


class EncoderBlock(layers.Layer):
    """Self-attention and a feed-forward network, each added back and normalized."""

    def __init__(self, width, heads, hidden, dropout=0.1, **kwargs):
        super().__init__(**kwargs)
        self.attention = layers.MultiHeadAttention(num_heads=heads, key_dim=width)
        self.feed_forward = keras.Sequential(
            [layers.Dense(hidden, activation="relu"), layers.Dense(width)]
        )
        self.after_attention = layers.LayerNormalization(epsilon=1e-6)
        self.after_feed_forward = layers.LayerNormalization(epsilon=1e-6)
        self.drop_attention = layers.Dropout(dropout)
        self.drop_feed_forward = layers.Dropout(dropout)

    def call(self, x):
        mixed = self.drop_attention(self.attention(x, x))
        x = self.after_attention(x + mixed)
        transformed = self.drop_feed_forward(self.feed_forward(x))
        return self.after_feed_forward(x + transformed)


(x_train, y_train), (x_val, y_val) = keras.datasets.imdb.load_data(num_words=VOCABULARY)
print(f"Reviews: {len(x_train)} for training, {len(x_val)} for validation")
x_train = keras.utils.pad_sequences(x_train, maxlen=REVIEW_WORDS)
x_val = keras.utils.pad_sequences(x_val, maxlen=REVIEW_WORDS)

ids = layers.Input(shape=(REVIEW_WORDS,))
h = WordAndPosition(REVIEW_WORDS, VOCABULARY, WIDTH)(ids)
h = EncoderBlock(WIDTH, HEADS, HIDDEN)(h)
h = layers.GlobalAveragePooling1D()(h)
h = layers.Dropout(0.1)(h)
h = layers.Dense(20, activation="relu")(h)
h = layers.Dropout(0.1)(h)
probabilities = layers.Dense(2, activation="softmax")(h)
model = keras.Model(inputs=ids, outputs=probabilities, name="review_transformer")

model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
history = model.fit(x_train, y_train, batch_size=32, epochs=2, validation_data=(x_val, y_val))
