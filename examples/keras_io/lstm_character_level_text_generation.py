"""Generate text character by character with an LSTM trained on a book.

The text is lower-cased and cut into overlapping 40-character snippets (one every 3
characters); for each, the model (one ``LSTM`` and a ``Dense`` softmax over the
characters) learns the character that follows. After every epoch it writes 400
characters from a random seed snippet, sampling each next character from its predicted
distribution sharpened or flattened by a temperature.

After the keras.io example "Character-level text generation with LSTM"
(https://keras.io/examples/generative/lstm_character_level_text_generation/), written
anew for layernet; it runs under Keras 3 with the imports swapped.

Data: ``keras.utils.get_file`` fetches ``nietzsche.txt`` into Keras's cache. With
neither a network nor a cached copy, the block marked "layernet gallery: offline
stand-in" uses a plain English text file instead (``_offline_sequences.nietzsche_txt``:
CPython's ``LICENSE.txt``) and prints a note; the text generated then says nothing about
the book.

Run it with ``python examples/keras_io/lstm_character_level_text_generation.py``; a
short run: ``python examples/keras_io/_short_sequences.py
lstm_character_level_text_generation --small-data --set epochs=3 --samples 2000``.
"""

import numpy as np

import layernet as keras  # under Keras 3: import keras
from layernet import layers  # under Keras 3: from keras import layers

SNIPPET = 40  # characters the model sees
STRIDE = 3  # a new snippet every STRIDE characters
GENERATED = 400  # characters written after each epoch
TEMPERATURES = (0.2, 0.5, 1.0, 1.2)
epochs = 40

# --- layernet gallery: offline stand-in ---
try:
    path = keras.utils.get_file(
        "nietzsche.txt", origin="https://s3.amazonaws.com/text-datasets/nietzsche.txt"
    )
except OSError:  # no cached copy and no network
    import _offline_sequences

    path = _offline_sequences.nietzsche_txt()
# --- end of the offline stand-in ---

with open(path, encoding="utf-8") as f:
    text = f.read().lower().replace("\n", " ")
alphabet = sorted(set(text))
index = {c: i for i, c in enumerate(alphabet)}
print(f"Text: {len(text)} characters, {len(alphabet)} distinct")

starts = range(0, len(text) - SNIPPET, STRIDE)
x = np.zeros((len(starts), SNIPPET, len(alphabet)), dtype=bool)
y = np.zeros((len(starts), len(alphabet)), dtype=bool)
for row, start in enumerate(starts):
    for step, char in enumerate(text[start : start + SNIPPET]):
        x[row, step, index[char]] = True
    y[row, index[text[start + SNIPPET]]] = True
print(f"Snippets: {len(starts)}")

model = keras.Sequential(
    [
        keras.Input(shape=(SNIPPET, len(alphabet))),
        layers.LSTM(128),
        layers.Dense(len(alphabet), activation="softmax"),
    ],
    name="char_lstm",
)
model.compile(loss="categorical_crossentropy", optimizer=keras.optimizers.RMSprop(0.01))

rng = np.random.default_rng(0)


def draw(probabilities, temperature):
    """One index drawn from ``probabilities ** (1 / temperature)``, renormalized."""
    logits = np.log(np.asarray(probabilities, dtype="float64") + 1e-12) / temperature
    weights = np.exp(logits - logits.max())
    return int(rng.choice(len(weights), p=weights / weights.sum()))


def write(seed, temperature, length=GENERATED):
    window, written = seed, ""
    for _ in range(length):
        encoded = np.zeros((1, SNIPPET, len(alphabet)), dtype=bool)
        for step, char in enumerate(window):
            encoded[0, step, index[char]] = True
        probabilities = model.predict(encoded, verbose=0)[0]
        char = alphabet[draw(probabilities, temperature)]
        written += char
        window = window[1:] + char
    return written


for epoch in range(epochs):
    model.fit(x, y, batch_size=128, epochs=1)
    start = int(rng.integers(0, len(text) - SNIPPET))
    seed = text[start : start + SNIPPET]
    print(f"\nSamples after epoch {epoch + 1}, from the seed {seed!r}")
    for temperature in TEMPERATURES:
        print(f"temperature {temperature}: {write(seed, temperature)!r}")
