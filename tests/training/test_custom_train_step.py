"""A `train_step` written as Keras's guide writes it: the batch packed as Keras packs it, and a
`metrics` property listing the step's own trackers, reset every epoch."""

from __future__ import annotations

import numpy as np
import pytest

import layernet as ln


def _data(n=40):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, 3)).astype("float32")
    y = (x @ np.array([[1.0], [-1.0], [0.5]], dtype="float32")).astype("float32")
    return x, y


def test_the_batch_is_packed_as_keras_packs_it():
    seen = []

    class Recording(ln.Model):
        def train_step(self, data):
            seen.append(("train", len(data) if isinstance(data, tuple) else None))
            return super().train_step(data)

        def test_step(self, data):
            seen.append(("test", len(data) if isinstance(data, tuple) else None))
            return super().test_step(data)

    inp = ln.Input((3,))
    model = Recording(inp, ln.Dense(1, seed=0)(inp))
    model.compile(ln.SGD(0.05), "mse")
    x, y = _data()
    model.fit(x, y, batch_size=20, epochs=1, verbose=0)
    assert seen == [("train", 2), ("train", 2)]  # (x, y): no sample weights
    seen.clear()
    model.fit(x, y, sample_weight=np.ones(40), batch_size=40, epochs=1, verbose=0)
    model.evaluate(x, y, batch_size=40, verbose=0)
    model.train_on_batch(x, y)
    model.test_on_batch(x, y, sample_weight=np.ones(40))
    assert seen == [("train", 3), ("test", 2), ("train", 2), ("test", 3)]


class Tracked(ln.Model):
    """Keras's guide: a train step that keeps its own loss and MAE trackers."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.loss_tracker = ln.metrics.Mean(name="loss")
        self.mae_metric = ln.metrics.MeanAbsoluteError(name="mae")

    def train_step(self, data):
        x, y = data
        logs = super().train_step(data)
        self.loss_tracker.update_state(logs["loss"])
        self.mae_metric.update_state(y, self(x))
        return {m.name: m.result() for m in self.metrics}

    @property
    def metrics(self):
        return [self.loss_tracker, self.mae_metric]


def test_a_metrics_property_of_ones_own_trackers_is_reset_each_epoch():
    inp = ln.Input((3,))
    model = Tracked(inp, ln.Dense(1, seed=0)(inp))
    model.compile(ln.SGD(0.05), "mse")
    x, y = _data()
    history = model.fit(x, y, batch_size=10, epochs=3, verbose=0)
    assert set(history.history) == {"loss", "mae"}
    assert model.mae_metric.count == pytest.approx(40)  # this epoch's batches only (reset)
    assert model.loss_tracker.count == pytest.approx(4)
    assert history.history["mae"][-1] < history.history["mae"][0]
    result = model.get_metrics_result()
    assert result["mae"] == pytest.approx(history.history["mae"][-1])
    model.reset_metrics()
    assert model.mae_metric.count == 0


def test_get_metrics_result_names_as_fit_logs():
    inp = ln.Input((3,), name="x")
    h = ln.Dense(4, seed=0)(inp)
    model = ln.Model(inp, {"a": ln.Dense(1, name="a", seed=1)(h), "b": ln.Dense(1, name="b")(h)})
    model.compile(ln.SGD(0.01), {"a": "mse", "b": "mse"}, metrics={"a": ["mae"]})
    x, y = _data()
    logs = model.evaluate(x, {"a": y, "b": -y}, verbose=0, return_dict=True)
    assert model.get_metrics_result() == pytest.approx(logs)
    assert [m.name for m in model.metrics] == ["mae"]
