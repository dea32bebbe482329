"""Sequence-to-sequence addition of digit strings with an LSTM encoder-decoder.

After keras.io's "Sequence to sequence learning for performing number addition":
a question such as ``"535+61 "`` (numbers of up to ``--digits`` digits, padded
with spaces to ``2 digits + 1`` characters, read reversed, as there) is one-hot
encoded; the model

    LSTM(128) -> RepeatVector(digits + 1) -> LSTM(128, return_sequences=True) -> Dense(12)

encodes it into one vector, repeats it once per answer character, and decodes
the answer ``"596 "`` one character per step (softmax cross-entropy at every
step). It prints the exact-match accuracy (every character of the answer
right) and the per-character accuracy on held-out questions, and a few answers.
keras.io trains 3 digits on 50,000 questions for 30 epochs; the defaults here
(2 digits, 5,000 questions, 40 epochs) run in minutes on a CPU.

    python examples/addition_rnn.py [--digits 2] [--questions 5000] [--epochs 40] [--quick]
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

import layernet as ln

CHARS = "0123456789+ "


def questions(n: int, digits: int, rng: np.random.Generator) -> tuple[list[str], list[str]]:
    """``n`` distinct questions ``"a+b"`` (padded) and their answers (padded)."""
    if n > (10**digits) * (10**digits + 1) // 2:
        raise ValueError(f"there are fewer than {n} distinct questions with {digits} digits")
    seen: set[tuple[int, int]] = set()
    qs, ans = [], []
    while len(qs) < n:
        a, b = (int(rng.integers(0, 10 ** int(rng.integers(1, digits + 1)))) for _ in range(2))
        key = (min(a, b), max(a, b))
        if key in seen:
            continue
        seen.add(key)
        qs.append(f"{a}+{b}".ljust(2 * digits + 1))
        ans.append(str(a + b).ljust(digits + 1))
    return qs, ans


def one_hot(strings: list[str], length: int) -> np.ndarray:
    out = np.zeros((len(strings), length, len(CHARS)), "float32")
    for i, s in enumerate(strings):
        for j, c in enumerate(s):
            out[i, j, CHARS.index(c)] = 1.0
    return out


def labels(strings: list[str]) -> np.ndarray:
    return np.array([[CHARS.index(c) for c in s] for s in strings], "int64")


def build_model(digits: int, units: int = 128) -> ln.Sequential:
    return ln.Sequential(
        [
            ln.Input(shape=(2 * digits + 1, len(CHARS))),
            ln.layers.LSTM(units),
            ln.layers.RepeatVector(digits + 1),
            ln.layers.LSTM(units, return_sequences=True),
            ln.layers.Dense(len(CHARS)),
        ],
        name="addition_rnn",
    )


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--digits", type=int, default=2)
    parser.add_argument("--questions", type=int, default=5000)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="a few steps, for a smoke test")
    args = parser.parse_args(argv)
    ln.set_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    n, epochs, units = args.questions, args.epochs, 128
    if args.quick:
        n, epochs, units = 400, 1, 16
    digits = args.digits
    qs, ans = questions(n, digits, rng)
    x = one_hot([q[::-1] for q in qs], 2 * digits + 1)  # reversed questions, as keras.io
    y = labels(ans)
    split = n - n // 10
    model = build_model(digits, units)
    model.compile(
        ln.Adam(learning_rate=1e-3), ln.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    start = time.perf_counter()
    model.fit(x[:split], y[:split], batch_size=32, epochs=epochs, verbose=0 if args.quick else 2)
    seconds = time.perf_counter() - start
    guess = model.predict(x[split:], verbose=0).argmax(axis=-1)
    exact = float(np.mean(np.all(guess == y[split:], axis=1)))
    per_char = float(np.mean(guess == y[split:]))
    print(
        f"{split:,} training questions, {epochs} epochs ({seconds:.0f} s): held-out exact "
        f"answers {exact:.3f}, characters {per_char:.3f}"
    )
    for i in range(split, split + 5):
        answer = "".join(CHARS[k] for k in guess[i - split])
        mark = "ok" if answer == ans[i] else "wrong"
        print(f"  {qs[i].strip():>7} = {answer.strip():<4} ({mark}, expected {ans[i].strip()})")
    return {"exact": exact, "per_char": per_char, "seconds": seconds}


if __name__ == "__main__":
    main(sys.argv[1:])
