"""PyTorch baseline for examples/mnist1d_table.py: the same four models, recipe and data.

The MNIST-1D paper's models written for PyTorch (a linear layer; an MLP 40-100-100-10
whose middle layer is residual; the three-convolution CNN; a bidirectional GRU of 6
units whose 40 x 12 outputs feed a linear layer), trained with the paper's recipe
(Adam 1e-2, batch 100, batches in order, steps + 1 updates) on layernet's copy of the
data, so that layernet's table can be compared with PyTorch's on the same machine.

    python benchmarks/mnist1d_table_torch.py [--seeds 0 1 2] [--steps 6000]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
from torch import nn

import layernet as ln


class MLP(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.b, self.c = nn.Linear(40, 100), nn.Linear(100, 100), nn.Linear(100, 10)

    def forward(self, x):
        h = torch.relu(self.a(x))
        return self.c(h + torch.relu(self.b(h)))


class CNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.convs = nn.Sequential(
            nn.Conv1d(1, 25, 5, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv1d(25, 25, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv1d(25, 25, 3, stride=2, padding=1),
            nn.ReLU(),
        )
        self.linear = nn.Linear(125, 10)

    def forward(self, x):
        return self.linear(self.convs(x[:, None, :]).flatten(1))


class GRU(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.gru = nn.GRU(1, 6, batch_first=True, bidirectional=True)
        self.linear = nn.Linear(480, 10)

    def forward(self, x):
        out, _ = self.gru(x[..., None])
        return self.linear(out.flatten(1))


MODELS = {"logistic": lambda: nn.Linear(40, 10), "mlp": MLP, "cnn": CNN, "gru": GRU}


def train(name: str, data, seed: int, steps: int) -> float:
    (x, y), (xt, yt) = data
    torch.manual_seed(seed)
    model = MODELS[name]()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for step in range(steps + 1):
        i = (step * 100) % len(x)
        loss = nn.functional.cross_entropy(model(x[i : i + 100]), y[i : i + 100])
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        return float((model(xt).argmax(1) == yt).float().mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=6000)
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    runs = []
    for variant in ("regular", "shuffled"):
        (x, y), (xt, yt) = ln.datasets.load_mnist1d(shuffle_spatial=variant == "shuffled")
        data = (
            (torch.tensor(x[..., 0]), torch.tensor(y)),
            (torch.tensor(xt[..., 0]), torch.tensor(yt)),
        )
        for name in args.models:
            for seed in args.seeds:
                start = time.perf_counter()
                acc = train(name, data, seed, args.steps)
                secs = time.perf_counter() - start
                runs.append(
                    {
                        "variant": variant,
                        "model": name,
                        "seed": seed,
                        "accuracy": acc,
                        "seconds": secs,
                    }
                )
                print(
                    f"{variant:9s} {name:9s} seed {seed}: {100 * acc:5.1f}% ({secs:.1f}s)",
                    flush=True,
                )
    for variant in ("regular", "shuffled"):
        cells = []
        for name in args.models:
            accs = [
                100 * r["accuracy"] for r in runs if r["variant"] == variant and r["model"] == name
            ]
            sd = statistics.stdev(accs) if len(accs) > 1 else 0.0
            cells.append(f"{name} {statistics.mean(accs):.1f} ± {sd:.1f}")
        print(f"{variant}: " + ", ".join(cells))
    if args.out:
        args.out.write_text(json.dumps(runs))


if __name__ == "__main__":
    main()
