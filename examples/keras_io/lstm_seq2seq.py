"""Translate short English sentences into French, one character at a time.

An encoder LSTM reads the English characters (one-hot) and hands its final states to a
decoder LSTM, which is trained with teacher forcing: given the French text so far,
predict its next character. The trained model is saved to a ``.keras`` file and loaded
back; two inference models are then cut out of the loaded one through its layers'
``input`` and ``output`` tensors (an encoder that returns the states, and a decoder that
takes states and one character and returns the next character's probabilities and its
new states), and the first sentences are translated greedily.

After the keras.io example "Character-level recurrent sequence-to-sequence model"
(https://keras.io/examples/nlp/lstm_seq2seq/), written anew for layernet; it runs
under Keras 3 with the imports swapped.

Data: ``keras.utils.get_file`` fetches manythings.org's ``fra-eng.zip`` (lines of
``English<TAB>French<TAB>attribution`` in ``fra.txt``) into Keras's cache. With neither
a network nor a cached copy, the block marked "layernet gallery: offline stand-in"
writes a zip of the same format (``_offline_sequences.fra_eng_zip``: word-by-word
"translations" over a small dictionary) and prints a note; figures on it say nothing
about the real corpus.

Run it with ``python examples/keras_io/lstm_seq2seq.py``; a short run:
``python examples/keras_io/_short_sequences.py lstm_seq2seq --small-data --samples 1200``.
"""

import zipfile

import numpy as np

import layernet as keras  # under Keras 3: import keras

PAIRS = 10_000  # sentence pairs used
STATE_SIZE = 256
BOS, EOS = "\t", "\n"  # marks that open and close every French sentence
SAVED = "s2s_model.keras"

# --- layernet gallery: offline stand-in ---
try:
    archive = keras.utils.get_file(origin="http://www.manythings.org/anki/fra-eng.zip")
except OSError:  # no cached copy and no network
    import _offline_sequences

    archive = _offline_sequences.fra_eng_zip()
# --- end of the offline stand-in ---

with zipfile.ZipFile(archive) as zipped:
    lines = zipped.read("fra.txt").decode("utf-8").splitlines()

english, french = [], []
for line in lines[:PAIRS]:
    parts = line.split("\t")
    if len(parts) >= 2:
        english.append(parts[0])
        french.append(BOS + parts[1] + EOS)

english_chars = sorted(set("".join(english)))
french_chars = sorted(set("".join(french)))
english_index = {c: i for i, c in enumerate(english_chars)}
french_index = {c: i for i, c in enumerate(french_chars)}
longest_english = max(map(len, english))
longest_french = max(map(len, french))
print(f"Sentence pairs: {len(english)}")
print(f"Characters: {len(english_chars)} English, {len(french_chars)} French")
print(f"Longest sentence: {longest_english} English, {longest_french} French characters")


def one_hot(texts, index, length):
    """Texts -> (n, length, len(index)) one-hot array; positions past a text's end are 0."""
    out = np.zeros((len(texts), length, len(index)), dtype="float32")
    for row, text in enumerate(texts):
        for step, char in enumerate(text):
            out[row, step, index[char]] = 1.0
    return out


source = one_hot(english, english_index, longest_english)
target_in = one_hot(french, french_index, longest_french)
# The decoder learns to output, at every step, the character that comes next.
target_out = np.zeros_like(target_in)
target_out[:, :-1] = target_in[:, 1:]

english_in = keras.Input(shape=(None, len(english_chars)), name="english")
_, h, c = keras.layers.LSTM(STATE_SIZE, return_state=True, name="reader")(english_in)
french_in = keras.Input(shape=(None, len(french_chars)), name="french_so_far")
writer = keras.layers.LSTM(STATE_SIZE, return_sequences=True, return_state=True, name="writer")
written, _, _ = writer(french_in, initial_state=[h, c])
next_char = keras.layers.Dense(len(french_chars), activation="softmax", name="next_char")
translator = keras.Model([english_in, french_in], next_char(written), name="translator")

translator.compile(optimizer="rmsprop", loss="categorical_crossentropy", metrics=["accuracy"])
translator.fit([source, target_in], target_out, batch_size=64, epochs=100, validation_split=0.2)
translator.save(SAVED)

# Inference: reload the model and rebuild its two halves from the trained layers.
trained = keras.models.load_model(SAVED)
reader = trained.get_layer("reader")
encoder = keras.Model(trained.input[0], reader.output[1:], name="encoder")

h_in = keras.Input(shape=(STATE_SIZE,), name="h")
c_in = keras.Input(shape=(STATE_SIZE,), name="c")
step_out, h_out, c_out = trained.get_layer("writer")(trained.input[1], initial_state=[h_in, c_in])
probabilities = trained.get_layer("next_char")(step_out)
decoder = keras.Model([trained.input[1], h_in, c_in], [probabilities, h_out, c_out], name="decoder")


def translate(one_sentence):
    """Greedy decoding of a (1, steps, len(english_chars)) one-hot sentence."""
    states = encoder.predict(one_sentence, verbose=0)
    char = np.zeros((1, 1, len(french_chars)), dtype="float32")
    char[0, 0, french_index[BOS]] = 1.0
    text = ""
    while True:
        probs, h_state, c_state = decoder.predict([char, *states], verbose=0)
        chosen = french_chars[int(np.argmax(probs[0, -1]))]
        if chosen == EOS or len(text) >= longest_french:
            return text
        text += chosen
        char = np.zeros_like(char)
        char[0, 0, french_index[chosen]] = 1.0
        states = [h_state, c_state]


for i in range(20):
    print(f"{english[i]!r:>40} -> {translate(source[i : i + 1])!r}")
