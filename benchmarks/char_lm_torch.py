"""The character-level language model of ``examples/char_lstm.py``, twinned in PyTorch.

Same data (CPython's ``LICENSE.txt``, lower-cased; 40-character windows every 3
characters of the first 90% for training, every window of the last 10% held out),
same model (``Embedding(vocabulary, 32) -> LSTM(128) -> Dense(vocabulary)``, logits),
initialised as Keras initialises it (uniform(-0.05, 0.05) embeddings, Glorot-uniform
kernels, orthogonal recurrent kernel, zero biases with the forget gate's at 1), same
optimiser (Adam, learning rate 0.005, Keras's epsilon 1e-7), same batch (64, reshuffled
every epoch) and number of epochs. It prints the loss per character on the training
windows and on the held-out text.

    python benchmarks/char_lm_torch.py [--epochs 3] [--threads 2] [--seed 0]
    python benchmarks/char_lm_torch.py --compare   # also runs layernet's, same recipe

``--compare`` runs ``examples/char_lstm.py`` with the same epochs in the same process
afterwards and prints both losses and their ratio. PyTorch is a benchmark dependency
(the ``oracle`` extra), never imported by layernet itself.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def char_lstm_example():
    """``examples/char_lstm.py`` as a module (its data functions and its ``main``)."""
    spec = importlib.util.spec_from_file_location("char_lstm", ROOT / "examples" / "char_lstm.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def data(example):
    """The example's windows: ``(x, y), (x_val, y_val), vocabulary size``."""
    text = example.load_text()
    chars = sorted(set(text))
    ids = np.array([chars.index(c) for c in text])
    cut = int(0.9 * len(ids))
    return example.windows(ids[:cut], step=3), example.windows(ids[cut:], step=1), len(chars)


def torch_model(torch, vocabulary: int, units: int = 128, dim: int = 32):
    """The example's model in PyTorch, initialised as Keras initialises it."""
    nn = torch.nn

    class CharLSTM(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embedding = nn.Embedding(vocabulary, dim)
            self.lstm = nn.LSTM(dim, units, batch_first=True)
            self.dense = nn.Linear(units, vocabulary)

        def forward(self, x):
            _, (h, _) = self.lstm(self.embedding(x))
            return self.dense(h[-1])

    model = CharLSTM()
    with torch.no_grad():
        nn.init.uniform_(model.embedding.weight, -0.05, 0.05)
        # Keras's kernel (dim, 4 units) is Glorot-uniform over that shape; PyTorch keeps
        # its transpose (4 units, dim), gates in the same order i, f, g(c), o.
        bound = math.sqrt(6.0 / (dim + 4 * units))
        nn.init.uniform_(model.lstm.weight_ih_l0, -bound, bound)
        recurrent = torch.empty(units, 4 * units)
        nn.init.orthogonal_(recurrent)
        model.lstm.weight_hh_l0.copy_(recurrent.T)
        model.lstm.bias_ih_l0.zero_()
        model.lstm.bias_hh_l0.zero_()
        model.lstm.bias_ih_l0[units : 2 * units] = 1.0  # unit_forget_bias
        bound = math.sqrt(6.0 / (units + vocabulary))
        nn.init.uniform_(model.dense.weight, -bound, bound)
        model.dense.bias.zero_()
    return model


def loss_per_char(torch, model, x, y) -> float:
    with torch.no_grad():
        logits = torch.cat([model(torch.from_numpy(x[i : i + 256])) for i in range(0, len(x), 256)])
        return float(torch.nn.functional.cross_entropy(logits.double(), torch.from_numpy(y)))


def run_torch(epochs: int, seed: int, threads: int) -> dict[str, float]:
    import torch

    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    example = char_lstm_example()
    (x, y), (x_val, y_val), vocabulary = data(example)
    x, x_val = x.astype("int64"), x_val.astype("int64")
    model = torch_model(torch, vocabulary)
    opt = torch.optim.Adam(model.parameters(), lr=0.005, eps=1e-7)
    rng = np.random.default_rng(seed)
    start = time.perf_counter()
    for _ in range(epochs):
        order = rng.permutation(len(x))
        for i in range(0, len(x), 64):
            idx = order[i : i + 64]
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(
                model(torch.from_numpy(x[idx])), torch.from_numpy(y[idx])
            )
            loss.backward()
            opt.step()
    seconds = time.perf_counter() - start
    return {
        "train_loss": loss_per_char(torch, model, x, y),
        "val_loss": loss_per_char(torch, model, x_val, y_val),
        "uniform": math.log(vocabulary),
        "seconds": seconds,
    }


def run_layernet(epochs: int, seed: int) -> dict[str, float]:
    with contextlib.redirect_stdout(io.StringIO()):  # the example also samples text
        return char_lstm_example().main(["--epochs", str(epochs), "--seed", str(seed)])


def cpu_name() -> str:
    """The CPU's model name (as ``bench.py`` reads it) and the number of cores."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench import cpu_name as model_name

    return f"{model_name()}, {os.cpu_count()} cores"


def main(argv: list[str] | None = None) -> dict[str, dict[str, float]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2, help="PyTorch's threads")
    parser.add_argument("--compare", action="store_true", help="run layernet's example too")
    args = parser.parse_args(argv)
    print(f"CPU: {cpu_name()}; recipe: {args.epochs} epochs, batch 64, Adam 0.005")
    results = {"torch": run_torch(args.epochs, args.seed, args.threads)}
    if args.compare:
        results["layernet"] = run_layernet(args.epochs, args.seed)
    for name, r in results.items():
        print(
            f"{name:9s} loss per character: train {r['train_loss']:.4f} nats, held-out "
            f"{r['val_loss']:.4f} nats ({r['val_loss'] / math.log(2):.3f} bits); "
            f"uniform {r['uniform']:.4f}; {r['seconds']:.0f} s of training"
        )
    if args.compare:
        for key in ("train_loss", "val_loss"):
            ratio = results["layernet"][key] / results["torch"][key]
            print(f"{key}: layernet / PyTorch = {ratio:.3f}")
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
