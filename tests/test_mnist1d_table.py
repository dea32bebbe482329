"""The MNIST-1D table example: the paper's model shapes, its recipe's batches, the printed table."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

import layernet as ln

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
pytest.importorskip("mnist1d", reason="needs the 'data' extra")
import mnist1d_table
import train_mnist1d


@pytest.mark.parametrize(
    ("name", "count"),
    # The parameter counts the MNIST-1D repository's models print.
    [("logistic", 410), ("mlp", 15210), ("cnn", 5210), ("gru", 5134)],
)
def test_models_have_the_papers_shapes(name, count):
    model = mnist1d_table.MODELS[name]()
    model.build((None, 40, 1), seed=0)
    assert model.count_params() == count
    assert model.compute_output_shape((7, 40, 1)) == (7, 10)


def test_gru_starts_as_pytorch_does():
    model = mnist1d_table.gru()
    model.build((None, 40, 1), seed=0)
    mnist1d_table.torch_like_gru_init(model, np.random.default_rng(0))
    for direction in model.layers[0].layers:
        for p in direction.params.values():
            assert np.abs(p).max() <= 1 / np.sqrt(6) and p.std() > 0.2


def test_short_run_prints_the_table_beside_the_papers():
    results = mnist1d_table.run(
        [0],
        steps=20,
        models=["logistic", "gru"],
        variants=["regular", "shuffled"],
        eval_every=10,
        log=lambda s: None,
    )
    assert len(results) == 4
    r = results[0]
    assert r["steps"] == [0, 10, 20] and 0 <= r["accuracy"] <= 1
    assert r["accuracy"] == r["test_accuracy"][-1]
    text = mnist1d_table.table(results, [0])
    assert (
        "(paper 32)" in text and "(paper 57)" in text and "| MNIST-1D, spatially shuffled |" in text
    )


def test_batches_are_taken_in_order(monkeypatch):
    data = ln.datasets.load_mnist1d()
    seen = []
    real = ln.Sequential.train_step

    def spy(self, x, y):
        seen.append(x[0, :, 0].copy())
        return real(self, x, y)

    monkeypatch.setattr(ln.Sequential, "train_step", spy)
    mnist1d_table.train("logistic", data, seed=0, steps=41, eval_every=0)
    x = data[0][0]
    assert len(seen) == 42  # steps + 1 updates, as the reference loop
    for step in (0, 1, 39, 40, 41):
        np.testing.assert_array_equal(seen[step], x[(100 * step) % 4000, :, 0])


def test_demo_offers_the_papers_recipe():
    model, history, _, _ = train_mnist1d.train(1, seed=0, verbose=0, recipe="paper")
    assert isinstance(model.optimizer, ln.Adam) and model.optimizer.learning_rate == 1e-2
    assert len(history.history["loss"]) == 1
