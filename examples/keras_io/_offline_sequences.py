"""Offline stand-ins for the data the gallery's sequence scripts download.

The scripts in this folder, written after keras.io examples, read their data through
Keras's API (``keras.datasets``, ``keras.utils.get_file``, ``np.loadtxt`` or
``pd.read_csv`` on the data's URL), which downloads the file or reads it from Keras's
cache (``~/.keras/datasets`` or ``$KERAS_HOME``). On a machine with no network and no
cached copy, each script's block marked ``layernet gallery: offline stand-in`` falls
back to a function below: it generates data of the same format (same file layout,
shapes, dtypes and label coding) with a learnable signal, and prints a note.
Figures reached on a stand-in say nothing about the real data set.

Nothing here is downloaded; everything is generated from a fixed seed.
``LAYERNET_GALLERY_SHORT=1`` in the environment makes the stand-ins smaller (the
tests' short mode): fewer samples, and FordA series of 100 steps instead of 500.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import zipfile
from pathlib import Path

import numpy as np

__all__ = ["forda_tsv", "fra_eng_zip", "imdb", "mnist", "nab_csv", "nietzsche_txt", "note"]


def _short() -> bool:
    return os.environ.get("LAYERNET_GALLERY_SHORT", "") not in ("", "0")


def note(what: str, original: str) -> None:
    """Print the note every stand-in prints."""
    print(
        f"[layernet] {original} could not be read (no network and no cached copy): using an "
        f"offline stand-in, {what}. Figures on it say nothing about the real data set."
    )


def _folder() -> Path:
    """A folder for generated files (never Keras's cache: a stand-in must not pass for data)."""
    user = os.getuid() if hasattr(os, "getuid") else os.environ.get("USERNAME", "user")
    path = Path(tempfile.gettempdir()) / f"layernet-offline-{user}"
    path.mkdir(parents=True, exist_ok=True)
    return path


def imdb(num_words: int = 20000, seed: int = 113):
    """IMDB's format: 25,000 + 25,000 reviews as lists of word indices, labels 0/1.

    Every review starts with 1 (``start_char``); words are indices from 4 to
    ``num_words - 1`` (2 is out-of-vocabulary, as Keras's loader codes them), with
    Zipf-like frequencies. A positive review draws a few more words from one set of
    200 "positive" words, a negative one from another 200: a bag-of-words signal
    that an embedding and a recurrent layer can learn.
    """
    note("random reviews whose label shows in their choice of words", "imdb.npz")
    rng = np.random.default_rng(seed)
    vocab = np.arange(4, num_words)
    freq = 1.0 / np.arange(1, len(vocab) + 1)
    freq /= freq.sum()
    positive, negative = vocab[50:250], vocab[250:450]

    def split(n):
        y = rng.integers(0, 2, n)
        lengths = np.clip(rng.lognormal(5.2, 0.5, n).astype(int), 20, 1000)
        words = rng.choice(vocab, size=int(lengths.sum()), p=freq)
        owner = np.repeat(y, lengths)
        marked = rng.random(len(words)) < 0.08
        words[marked] = np.where(
            owner[marked] == 1,
            rng.choice(positive, int(marked.sum())),
            rng.choice(negative, int(marked.sum())),
        )
        x = np.empty(n, dtype=object)
        x[:] = [[1, *review.tolist()] for review in np.split(words, np.cumsum(lengths)[:-1])]
        return x, y.astype("int64")

    n = 2500 if _short() else 25000
    return split(n), split(n)


def mnist(seed: int = 0):
    """MNIST's format: uint8 images ``(60000, 28, 28)`` and ``(10000, 28, 28)``, labels 0-9.

    Each class is a fixed random stroke pattern; an image is its class's pattern
    shifted by up to two pixels, with noise.
    """
    note("10 classes of shifted, noisy stroke patterns", "mnist.npz")
    rng = np.random.default_rng(seed)
    prototypes = np.zeros((10, 32, 32))
    for k in range(10):
        for _ in range(4):  # four short strokes per class
            r, c = rng.integers(6, 26, 2)
            dr, dc = rng.integers(-1, 2, 2)
            for t in range(8):
                prototypes[k, np.clip(r + t * dr, 2, 29), np.clip(c + t * dc, 2, 29)] = 1.0
    kernel = np.array([0.25, 0.5, 1.0, 0.5, 0.25])
    for axis in (1, 2):  # thicken the strokes
        prototypes = np.apply_along_axis(np.convolve, axis, prototypes, kernel, "same")
    prototypes = np.clip(prototypes, 0, 1)

    # Every class's pattern at each of the 5 x 5 shifts, as uint8 images.
    shifted = np.stack(
        [prototypes[:, r : r + 28, c : c + 28] for r in range(5) for c in range(5)], axis=1
    )
    shifted = (shifted * 215).astype("uint8")

    def split(n):
        y = rng.integers(0, 10, n)
        x = shifted[y, rng.integers(0, 25, n)]
        noise = rng.integers(0, 40, x.shape, dtype="uint8")
        return x + noise, y.astype("uint8")

    return (split(6000), split(1000)) if _short() else (split(60000), split(10000))


def forda_tsv(name: str, seed: int = 0) -> str:
    """A file in FordA's UCR format: one series a line, the label (-1 or 1) then 500 values.

    ``name`` is ``"FordA_TRAIN.tsv"`` (3,601 series) or ``"FordA_TEST.tsv"`` (1,320);
    in the short mode 360 and 132 series of 100 steps.
    Every series is z-normalized noise with a few random tones; series of class 1
    also carry a burst of a fixed tone at a random place.
    """
    n, steps = (3601, 500) if "TRAIN" in name else (1320, 500)
    if _short():
        n, steps = n // 10, 100
    path = _folder() / f"{steps}_{name}"
    note(f"{n} z-normalized series of {steps} steps, class 1 with a hidden tone", name)
    if not path.exists():
        rng = np.random.default_rng(seed + (0 if "TRAIN" in name else 1))
        t = np.arange(steps)
        y = rng.choice([-1, 1], n)
        x = 0.8 * rng.standard_normal((n, steps))
        for _ in range(3):
            freq = rng.uniform(0.01, 0.2, (n, 1))
            x += rng.uniform(0.2, 1.0, (n, 1)) * np.sin(2 * np.pi * freq * t + rng.uniform(0, 7))
        start = rng.integers(0, steps - steps * 3 // 10, n)
        burst = (t >= start[:, None]) & (t < start[:, None] + steps * 3 // 10)
        x += (y[:, None] == 1) * burst * 1.5 * np.sin(2 * np.pi * 0.3 * t)
        x = (x - x.mean(axis=1, keepdims=True)) / x.std(axis=1, keepdims=True)
        table = np.column_stack([y, x])
        np.savetxt(path.with_suffix(f".{os.getpid()}.part"), table, fmt="%.6g", delimiter="\t")
        os.replace(path.with_suffix(f".{os.getpid()}.part"), path)
    return str(path)


def nab_csv(name: str, seed: int = 0) -> str:
    """A file in the Numenta Anomaly Benchmark's CSV format: ``timestamp,value``, every 5 min.

    14 days from 2014-04-01 (4,032 rows), a daily cycle (288 steps a day) with small
    noise; ``art_daily_jumpsup.csv`` also jumps up for one afternoon on day 11.
    """
    path = _folder() / name
    note("14 days of a noisy daily cycle, every 5 minutes", name)
    if not path.exists():
        rng = np.random.default_rng(seed + (1 if "jumpsup" in name else 0))
        steps = np.arange(288 * 14)
        phase = (steps % 288) / 288
        value = 20 + 60 * (phase > 0.25) * (phase < 0.75) + rng.uniform(0, 4, len(steps))
        if "jumpsup" in name:
            jump = (steps >= 288 * 10 + 170) & (steps < 288 * 10 + 210)
            value[jump] += 80
        start = np.datetime64("2014-04-01T00:00:00")
        stamps = start + steps * np.timedelta64(5, "m")
        lines = ["timestamp,value"]
        rows = zip(stamps.astype(str), value, strict=True)
        lines += [f"{stamp.replace('T', ' ')},{v:.10g}" for stamp, v in rows]
        path.with_suffix(f".{os.getpid()}.part").write_text("\n".join(lines) + "\n")
        os.replace(path.with_suffix(f".{os.getpid()}.part"), path)
    return str(path)


#: English words and their French translations: the stand-in's sentences are made of these.
_WORDS = {
    "go": "va", "run": "cours", "i": "je", "you": "tu", "we": "nous", "see": "vois",
    "eat": "mange", "the": "le", "cat": "chat", "dog": "chien", "house": "maison",
    "big": "grand", "small": "petit", "red": "rouge", "green": "vert", "water": "eau",
    "bread": "pain", "sun": "soleil", "moon": "lune", "and": "et", "now": "maintenant",
    "here": "ici", "today": "aujourd'hui", "book": "livre", "tree": "arbre",
    "car": "voiture", "friend": "ami", "good": "bon", "night": "nuit", "day": "jour",
}  # fmt: skip


def fra_eng_zip(seed: int = 0) -> str:
    """A ``fra-eng.zip`` holding a ``fra.txt`` in manythings.org's format.

    Each line is ``English<TAB>French<TAB>attribution``; the stand-in's sentences are
    1 to 4 words from a 30-word dictionary, capitalised and ended with "." or "!",
    translated word by word: a character-level mapping a seq2seq model can learn.
    The zip is written to a fresh folder, as ``get_file`` would leave it, and
    ``fra.txt`` beside it only when no ``unzip`` program is there to extract it.
    """
    note("word-by-word 'translations' over a 30-word dictionary", "fra-eng.zip")
    rng = np.random.default_rng(seed)
    english = list(_WORDS)
    lines = []
    for _ in range(1200 if _short() else 12000):
        words = [english[i] for i in rng.integers(0, len(english), rng.integers(1, 5))]
        end = "." if rng.random() < 0.7 else "!"
        src = " ".join(words).capitalize() + end
        dst = " ".join(_WORDS[w] for w in words).capitalize() + end
        lines.append(f"{src}\t{dst}\tCC-BY 2.0 (France) Attribution: offline stand-in")
    text = "\n".join(lines) + "\n"
    folder = Path(tempfile.mkdtemp(prefix="fra-eng-", dir=_folder()))
    path = folder / "fra-eng.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("fra.txt", text)
    if shutil.which("unzip") is None:
        (folder / "fra.txt").write_text(text, encoding="utf-8")
    return str(path)


def nietzsche_txt() -> str:
    """A plain UTF-8 English text file, as ``nietzsche.txt`` is (about 600,000 characters).

    The stand-in is CPython's own licence file (``LICENSE.txt`` in the standard
    library's folder: about 13,000 characters of English prose and legal text), or the
    Zen of Python where that file is missing; a shorter corpus than Nietzsche's, so
    the generated text stays poorer.
    """
    import codecs
    import contextlib
    import io

    note("CPython's LICENSE.txt (English prose, about 13,000 characters)", "nietzsche.txt")
    source = Path(os.__file__).resolve().parent / "LICENSE.txt"
    if source.is_file():
        text = source.read_text(encoding="utf-8", errors="replace")
    else:  # the Zen of Python, stored ROT13-encoded in the `this` module
        with contextlib.redirect_stdout(io.StringIO()):
            import this
        text = codecs.decode(this.s, "rot13")
    if _short():
        text = text[:6000]
    path = _folder() / ("nietzsche-short.txt" if _short() else "nietzsche.txt")
    path.write_text(text, encoding="utf-8")
    return str(path)
