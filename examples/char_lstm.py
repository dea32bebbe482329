"""A character-level language model (LSTM) on text that ships with Python.

The text is CPython's own licence file (``LICENSE.txt`` in the standard library
directory: the history of Python and its licences, about 13,000 characters of
English), or the Zen of Python (``import this``) when that file is missing. The
model reads 40 characters and predicts the next one, as keras.io's "Character-level
text generation with LSTM" does:

    Embedding(vocabulary, 32) -> LSTM(128) -> Dense(vocabulary)   (logits)

trained with Adam on the softmax cross-entropy. It prints the loss per character
(in nats and in bits) on the training windows and on the held-out last 10% of the
text, then samples text from the model at two temperatures.

    python examples/char_lstm.py [--epochs 10] [--seed 0] [--quick]
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

import layernet as ln

WINDOW = 40


def load_text() -> str:
    """CPython's LICENSE.txt (lower-cased, whitespace runs squeezed), or the Zen of Python."""
    path = Path(os.__file__).resolve().parent / "LICENSE.txt"
    if path.is_file():
        text = path.read_text(encoding="utf-8", errors="replace")
    else:  # the Zen of Python, stored ROT13-encoded in the `this` module
        import codecs
        import contextlib
        import io

        with contextlib.redirect_stdout(io.StringIO()):
            import this
        text = codecs.decode(this.s, "rot13")
    return " ".join(text.lower().split())


def windows(ids: np.ndarray, step: int) -> tuple[np.ndarray, np.ndarray]:
    """Every ``step``-th window of WINDOW ids and the id that follows it."""
    starts = np.arange(0, len(ids) - WINDOW, step)
    x = np.stack([ids[s : s + WINDOW] for s in starts]).astype("int32")
    return x, ids[starts + WINDOW].astype("int64")


def build_model(vocabulary: int, units: int = 128) -> ln.Model:
    inputs = ln.Input(shape=(WINDOW,), dtype="int32")
    h = ln.layers.Embedding(vocabulary, 32)(inputs)
    h = ln.layers.LSTM(units)(h)
    return ln.Model(inputs, ln.layers.Dense(vocabulary)(h), name="char_lstm")


def loss_per_char(model: ln.Model, x: np.ndarray, y: np.ndarray) -> float:
    """Mean cross-entropy (nats) of the next character."""
    logits = model.predict(x, batch_size=256, verbose=0).astype(np.float64)
    logits -= logits.max(axis=1, keepdims=True)
    logp = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    return float(-logp[np.arange(len(y)), y].mean())


def sample(
    model: ln.Model, seed_text: str, chars: list[str], length: int, temperature: float, rng
) -> str:
    index = {c: i for i, c in enumerate(chars)}
    ids = [index[c] for c in seed_text[-WINDOW:]]
    out = []
    for _ in range(length):
        logits = model.predict(np.array([ids[-WINDOW:]], "int32"), verbose=0)[0]
        z = logits.astype(np.float64) / temperature
        p = np.exp(z - z.max())
        p /= p.sum()
        nxt = int(rng.choice(len(p), p=p))
        ids.append(nxt)
        out.append(chars[nxt])
    return "".join(out)


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="a few steps, for a smoke test")
    args = parser.parse_args(argv)
    ln.set_seed(args.seed)
    text = load_text()
    chars = sorted(set(text))
    ids = np.array([chars.index(c) for c in text])
    cut = int(0.9 * len(ids))
    x, y = windows(ids[:cut], step=3)
    x_val, y_val = windows(ids[cut:], step=1)
    epochs, units, sample_len = args.epochs, 128, 300
    if args.quick:
        x, y, x_val, y_val = x[:256], y[:256], x_val[:128], y_val[:128]
        epochs, units, sample_len = 1, 16, 20
    print(f"text: {len(text):,} characters, {len(chars)} distinct; {len(x):,} training windows")
    model = build_model(len(chars), units)
    model.compile(
        ln.Adam(learning_rate=0.005), ln.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    start = time.perf_counter()
    model.fit(x, y, batch_size=64, epochs=epochs, verbose=0 if args.quick else 2)
    seconds = time.perf_counter() - start
    train_loss = loss_per_char(model, x, y)
    val_loss = loss_per_char(model, x_val, y_val)
    uniform = math.log(len(chars))
    print(
        f"loss per character after {epochs} epochs ({seconds:.0f} s): train {train_loss:.3f} "
        f"nats ({train_loss / math.log(2):.2f} bits), held-out {val_loss:.3f} nats "
        f"({val_loss / math.log(2):.2f} bits); uniform guess {uniform:.3f} nats"
    )
    rng = np.random.default_rng(args.seed)
    seed_text = text[cut : cut + WINDOW]
    for temperature in (0.5, 1.0):
        generated = sample(model, seed_text, chars, sample_len, temperature, rng)
        print(f"--- temperature {temperature}: {seed_text!r} ->\n{generated}")
    return {"train_loss": train_loss, "val_loss": val_loss, "uniform": uniform, "seconds": seconds}


if __name__ == "__main__":
    main(sys.argv[1:])
