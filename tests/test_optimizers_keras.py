"""Optimizers, clipping, weight decay, EMA and schedules against Keras 3 (JAX) and torch.optim."""

from __future__ import annotations

import os

import numpy as np
import pytest

import layernet as ln
from layernet.optimizers import schedules

OPT = ln.optimizers
STEPS = 7


def _data(seed: int = 0, steps: int = STEPS):
    rng = np.random.default_rng(seed)
    params = [rng.standard_normal((3, 4)), rng.standard_normal(5)]
    grads = [[rng.standard_normal(p.shape) for p in params] for _ in range(steps)]
    return params, grads


def run_ours(opt, params, grads):
    params = [p.copy() for p in params]
    for gs in grads:
        opt.apply_gradients(zip([g.copy() for g in gs], params, strict=True))
    return params


# ------------------------------------------------------------------ Keras 3
@pytest.fixture(scope="module")
def keras():
    os.environ["KERAS_BACKEND"] = "jax"
    return pytest.importorskip("keras")


def run_keras(keras, opt, params, grads):
    variables = [keras.Variable(p.astype("float32")) for p in params]
    for gs in grads:
        opt.apply_gradients([(g.astype("float32"), v) for g, v in zip(gs, variables, strict=True)])
    return [np.asarray(v.numpy(), dtype=np.float64) for v in variables]


# (layernet class name, keras class name, kwargs common to both)
CASES = [
    ("RMSprop", "RMSprop", {}),
    ("RMSprop", "RMSprop", {"learning_rate": 0.01, "rho": 0.8, "momentum": 0.5}),
    ("RMSprop", "RMSprop", {"learning_rate": 0.01, "centered": True, "epsilon": 1e-3}),
    ("RMSprop", "RMSprop", {"centered": True, "momentum": 0.9, "weight_decay": 0.1}),
    ("Adagrad", "Adagrad", {"learning_rate": 0.05}),
    ("Adagrad", "Adagrad", {"learning_rate": 0.05, "initial_accumulator_value": 0.0}),
    ("Adadelta", "Adadelta", {"learning_rate": 1.0}),
    ("Adadelta", "Adadelta", {"learning_rate": 0.5, "rho": 0.9, "epsilon": 1e-4}),
    ("Adamax", "Adamax", {"learning_rate": 0.01}),
    ("Adamax", "Adamax", {"learning_rate": 0.01, "beta_1": 0.8, "beta_2": 0.9}),
    ("Nadam", "Nadam", {"learning_rate": 0.01}),
    ("Nadam", "Nadam", {"learning_rate": 0.01, "beta_1": 0.8, "weight_decay": 0.05}),
    ("AdamW", "AdamW", {"learning_rate": 0.01}),
    ("AdamW", "AdamW", {"learning_rate": 0.01, "weight_decay": 0.1, "amsgrad": True}),
    ("Lion", "Lion", {"learning_rate": 0.01}),
    ("Lion", "Lion", {"learning_rate": 0.01, "beta_1": 0.5, "beta_2": 0.9}),
    ("Ftrl", "Ftrl", {"learning_rate": 0.1}),
    (
        "Ftrl",
        "Ftrl",
        {
            "learning_rate": 0.1,
            "learning_rate_power": -0.7,
            "l1_regularization_strength": 0.01,
            "l2_regularization_strength": 0.02,
            "l2_shrinkage_regularization_strength": 0.03,
            "beta": 0.1,
        },
    ),
    # Adam and SGD without weight decay: the same rule as Keras's (Adam up to where
    # epsilon is added, far below the tolerance for these gradients)
    ("Adam", "Adam", {"learning_rate": 0.01, "epsilon": 1e-7}),
    ("Adam", "Adam", {"learning_rate": 0.01, "amsgrad": True, "epsilon": 1e-7}),
    ("SGD", "SGD", {"learning_rate": 0.1, "momentum": 0.9}),
    ("SGD", "SGD", {"learning_rate": 0.1, "momentum": 0.9, "nesterov": True}),
    # clipping, EMA and decoupled decay are the base class's: checked on two rules
    ("RMSprop", "RMSprop", {"clipnorm": 1.0}),
    ("RMSprop", "RMSprop", {"clipvalue": 0.5}),
    ("Adamax", "Adamax", {"learning_rate": 0.01, "global_clipnorm": 1.5}),
    ("SGD", "SGD", {"learning_rate": 0.1, "clipnorm": 0.7}),
    ("Lion", "Lion", {"learning_rate": 0.01, "use_ema": True, "ema_momentum": 0.9}),
    (
        "Adagrad",
        "Adagrad",
        {"learning_rate": 0.1, "use_ema": True, "ema_momentum": 0.8, "ema_overwrite_frequency": 3},
    ),
]


@pytest.mark.parametrize(("ours", "theirs", "kwargs"), CASES)
def test_update_matches_keras(keras, ours, theirs, kwargs):
    params, grads = _data()
    got = run_ours(getattr(OPT, ours)(**kwargs), params, grads)
    want = run_keras(keras, getattr(keras.optimizers, theirs)(**kwargs), params, grads)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, rtol=2e-5, atol=2e-6)


def test_update_with_schedule_matches_keras(keras):
    params, grads = _data(1)
    ours = OPT.Adamax(schedules.ExponentialDecay(0.05, 2, 0.5), weight_decay=0.1)
    theirs = keras.optimizers.Adamax(
        keras.optimizers.schedules.ExponentialDecay(0.05, 2, 0.5), weight_decay=0.1
    )
    got = run_ours(ours, params, grads)
    want = run_keras(keras, theirs, params, grads)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, rtol=2e-5, atol=2e-6)


def test_ema_finalize_matches_keras(keras):
    params, grads = _data(2)
    ours = OPT.RMSprop(0.01, use_ema=True, ema_momentum=0.7)
    got = run_ours(ours, params, grads)
    variables = [keras.Variable(p.astype("float32")) for p in params]
    theirs = keras.optimizers.RMSprop(0.01, use_ema=True, ema_momentum=0.7)
    for gs in grads:
        theirs.apply_gradients(zip([g.astype("float32") for g in gs], variables, strict=True))
    ours.finalize_variable_values(got)
    theirs.finalize_variable_values(variables)
    for g, v in zip(got, variables, strict=True):
        np.testing.assert_allclose(g, np.asarray(v.numpy()), rtol=2e-5, atol=2e-6)


def test_defaults_are_keras(keras):
    for name in ["rmsprop", "adagrad", "adadelta", "adamax", "nadam", "adamw", "lion", "ftrl"]:
        ours = OPT.get(name).get_config()
        theirs = keras.optimizers.get(name).get_config()
        for key, value in ours.items():
            if key in ("learning_rate", "weight_decay") or key not in theirs:
                continue
            assert theirs[key] == pytest.approx(value) or theirs[key] == value, (name, key)
        assert ours["learning_rate"] == pytest.approx(float(theirs["learning_rate"]))


# ------------------------------------------------------------------- torch
@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch")


def run_torch(torch, make, params, grads):
    tensors = [torch.tensor(p.copy(), requires_grad=True) for p in params]
    opt = make(tensors)
    for gs in grads:
        for t, g in zip(tensors, gs, strict=True):
            t.grad = torch.tensor(g)
        opt.step()
    return [t.detach().numpy() for t in tensors]


# epsilon is placed differently (outside vs under the root, before vs after the bias
# correction) in some of these; it is set small enough to vanish at float64 tolerance
TORCH_CASES = [
    (
        lambda: OPT.RMSprop(0.01, rho=0.9, epsilon=1e-30),
        lambda o, ps: o.RMSprop(ps, lr=0.01, alpha=0.9, eps=1e-30),
    ),
    (
        lambda: OPT.RMSprop(0.01, momentum=0.8, centered=True, epsilon=1e-30),
        lambda o, ps: o.RMSprop(ps, lr=0.01, alpha=0.9, momentum=0.8, centered=True, eps=1e-30),
    ),
    (
        lambda: OPT.Adagrad(0.1, initial_accumulator_value=0.1, epsilon=1e-30),
        lambda o, ps: o.Adagrad(ps, lr=0.1, initial_accumulator_value=0.1, eps=1e-30),
    ),
    (
        lambda: OPT.Adadelta(1.0, rho=0.9, epsilon=1e-6),
        lambda o, ps: o.Adadelta(ps, lr=1.0, rho=0.9, eps=1e-6),
    ),
    (
        lambda: OPT.Adamax(0.01, epsilon=1e-30),
        lambda o, ps: o.Adamax(ps, lr=0.01, eps=1e-30),
    ),
    (
        lambda: OPT.Nadam(0.01, epsilon=1e-8),
        lambda o, ps: o.NAdam(ps, lr=0.01, eps=1e-8, momentum_decay=1.0),
    ),
    (
        lambda: OPT.AdamW(0.01, weight_decay=0.1, epsilon=1e-30),
        lambda o, ps: o.AdamW(ps, lr=0.01, weight_decay=0.1, eps=1e-30),
    ),
    (
        lambda: OPT.AdamW(0.01, weight_decay=0.1, epsilon=1e-30, amsgrad=True),
        lambda o, ps: o.AdamW(ps, lr=0.01, weight_decay=0.1, eps=1e-30, amsgrad=True),
    ),
    (
        lambda: OPT.Adam(0.01, amsgrad=True),
        lambda o, ps: o.Adam(ps, lr=0.01, eps=1e-8, amsgrad=True),
    ),
    (
        lambda: OPT.Adam(0.01, amsgrad=True, weight_decay=0.01),
        lambda o, ps: o.Adam(ps, lr=0.01, eps=1e-8, amsgrad=True, weight_decay=0.01),
    ),
]


@pytest.mark.parametrize(("ours", "theirs"), TORCH_CASES)
def test_update_matches_torch(torch, ours, theirs):
    params, grads = _data(3)
    got = run_ours(ours(), params, grads)
    want = run_torch(torch, lambda ps: theirs(torch.optim, ps), params, grads)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-8, atol=1e-10)


def test_global_clipnorm_matches_torch(torch):
    params, grads = _data(4)
    ours = OPT.SGD(0.1, global_clipnorm=1.0)
    got = run_ours(ours, params, grads)
    tensors = [torch.tensor(p.copy(), requires_grad=True) for p in params]
    opt = torch.optim.SGD(tensors, lr=0.1)
    for gs in grads:
        for t, g in zip(tensors, gs, strict=True):
            t.grad = torch.tensor(g)
        torch.nn.utils.clip_grad_norm_(tensors, 1.0)  # scales by 1 / (norm + 1e-6)
        opt.step()
    for g, t in zip(got, tensors, strict=True):
        np.testing.assert_allclose(g, t.detach().numpy(), rtol=1e-5, atol=1e-7)


# ---------------------------------------------------------------- schedules
SCHEDULE_CASES = [
    ("ExponentialDecay", (0.1, 10, 0.5), {}),
    ("ExponentialDecay", (0.1, 7, 0.9), {"staircase": True}),
    ("InverseTimeDecay", (0.1, 5, 0.5), {}),
    ("InverseTimeDecay", (0.1, 5, 0.5), {"staircase": True}),
    ("PiecewiseConstantDecay", ([10, 25, 40], [0.1, 0.05, 0.01, 0.001]), {}),
    ("PolynomialDecay", (0.1, 30), {}),
    ("PolynomialDecay", (0.1, 30), {"end_learning_rate": 0.01, "power": 2.0, "cycle": True}),
    ("PolynomialDecay", (0.1, 13), {"end_learning_rate": 0.001, "power": 0.5}),
    ("CosineDecay", (0.1, 40), {}),
    ("CosineDecay", (0.1, 40), {"alpha": 0.2}),
    ("CosineDecay", (0.001, 40), {"warmup_target": 0.1, "warmup_steps": 10}),
    ("CosineDecay", (0.001, 30), {"alpha": 0.1, "warmup_target": 0.05, "warmup_steps": 7}),
    ("CosineDecayRestarts", (0.1, 10), {}),
    ("CosineDecayRestarts", (0.1, 7), {"t_mul": 1.0, "m_mul": 0.5, "alpha": 0.1}),
    ("CosineDecayRestarts", (0.1, 6), {"t_mul": 1.5, "m_mul": 0.8}),
]


@pytest.mark.parametrize(("name", "args", "kwargs"), SCHEDULE_CASES)
def test_schedule_matches_keras(keras, name, args, kwargs):
    ours = getattr(schedules, name)(*args, **kwargs)
    theirs = getattr(keras.optimizers.schedules, name)(*args, **kwargs)
    for step in range(0, 121):
        assert ours(step) == pytest.approx(float(theirs(step)), rel=1e-5, abs=1e-8), step
    # get_config and from_config round-trip, with Keras's keys
    assert ours.get_config().keys() == theirs.get_config().keys()
    again = type(ours).from_config(ours.get_config())
    assert [again(t) for t in range(60)] == [ours(t) for t in range(60)]


def test_existing_cosine_decay_is_unchanged():
    old = ln.CosineDecay(0.3, decay_steps=17, alpha=0.25)
    for t in range(40):
        frac = min(t, 17) / 17
        cos = 0.5 * (1 + np.cos(np.pi * frac))
        assert old(t) == 0.3 * (0.25 + (1 - 0.25) * cos)
    assert ln.CosineDecay is schedules.CosineDecay


# ------------------------------------------------- saving, API and arguments
ALL = [
    lambda: OPT.SGD(0.05, momentum=0.9, nesterov=True, clipnorm=1.0),
    lambda: OPT.Adam(0.01, amsgrad=True, use_ema=True),
    lambda: OPT.RMSprop(0.01, momentum=0.5, centered=True, global_clipnorm=2.0),
    lambda: OPT.Adagrad(0.05, weight_decay=0.01),
    lambda: OPT.Adadelta(1.0, clipvalue=0.5),
    lambda: OPT.Adamax(schedules.PiecewiseConstantDecay([3, 6], [0.02, 0.01, 0.005])),
    lambda: OPT.Nadam(schedules.CosineDecay(0.001, 20, warmup_target=0.01, warmup_steps=4)),
    lambda: OPT.AdamW(schedules.ExponentialDecay(0.01, 5, 0.5, staircase=True), amsgrad=True),
    lambda: OPT.Lion(
        schedules.PolynomialDecay(0.003, 10, cycle=True), use_ema=True, ema_overwrite_frequency=4
    ),
    lambda: OPT.Ftrl(schedules.CosineDecayRestarts(0.1, 3), l1_regularization_strength=0.001),
    lambda: OPT.SGD(schedules.InverseTimeDecay(0.1, 2, 0.5)),
]


def _model(optimizer):
    model = ln.Sequential(
        [ln.Dense(6, activation="tanh", seed=1), ln.Dense(3, seed=2)], name="resume"
    )
    model.build((None, 4))
    model.compile(optimizer, "softmax_cross_entropy")
    return model


@pytest.mark.parametrize("make", ALL)
def test_save_and_load_mid_training_resumes_bit_for_bit(tmp_path, make):
    rng = np.random.default_rng(5)
    batches = [(rng.standard_normal((8, 4)), rng.integers(0, 3, 8)) for _ in range(10)]
    model = _model(make())
    for x, y in batches[:5]:
        model.train_step(x, y)
    model.save(tmp_path / "m.npz")
    loaded = ln.load_model(tmp_path / "m.npz")
    assert type(loaded.optimizer) is type(model.optimizer)
    assert loaded.optimizer.get_config() == model.optimizer.get_config()
    assert loaded.optimizer.iterations == 5
    for x, y in batches[5:]:
        model.train_step(x, y)
        loaded.train_step(x, y)
    for a, b in zip(model.get_weights(), loaded.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    for key, slots in model.optimizer.state.items():
        for name, value in slots.items():
            np.testing.assert_array_equal(value, loaded.optimizer.state[key][name])


@pytest.mark.parametrize("make", ALL)
def test_config_round_trip(make):
    opt = make()
    again = OPT.deserialize(OPT.serialize(opt))
    assert type(again) is type(opt) and again.get_config() == opt.get_config()
    assert OPT.get(OPT.serialize(opt)).get_config() == opt.get_config()


@pytest.mark.parametrize("name", sorted(OPT.OPTIMIZERS))
def test_names(name):
    opt = OPT.get(name)
    assert type(opt).__name__.lower() == name
    assert OPT.get(name.upper()).get_config() == opt.get_config()


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(ValueError, match=r"expected one of \['adadelta', 'adagrad', .*'sgd'\]"):
        OPT.get("adamm")


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (
            lambda: OPT.RMSprop(-0.1),
            r"RMSprop: invalid value for `learning_rate`: expected a "
            r"finite number > 0, received -0.1",
        ),
        (
            lambda: OPT.Lion(clipnorm=-1.0),
            r"Lion: invalid value for `clipnorm`: expected a "
            r"finite number >= 0, received -1.0",
        ),
        (lambda: OPT.Adagrad(clipvalue=-2), r"Adagrad: invalid value for `clipvalue`"),
        (lambda: OPT.Nadam(global_clipnorm=float("nan")), r"`global_clipnorm`"),
        (lambda: OPT.AdamW(clipnorm=1.0, clipvalue=1.0), r"only one of `clipnorm`, `clipvalue`"),
        (lambda: OPT.Adamax(weight_decay=-0.1), r"Adamax: invalid value for `weight_decay`"),
        (
            lambda: OPT.RMSprop(rho=1.0),
            r"RMSprop: invalid value for `rho`: expected a number "
            r"in \[0, 1\)",
        ),
        (lambda: OPT.Lion(beta_1=0.0), r"Lion: invalid value for `beta_1`"),
        (
            lambda: OPT.Ftrl(learning_rate_power=0.5),
            r"Ftrl: invalid value for "
            r"`learning_rate_power`",
        ),
        (lambda: OPT.SGD(use_ema=True, ema_momentum=1.5), r"`ema_momentum`"),
        (lambda: OPT.SGD(use_ema=True, ema_overwrite_frequency=0), r"`ema_overwrite_frequency`"),
        (
            lambda: schedules.ExponentialDecay(0.1, 0, 0.5),
            r"ExponentialDecay: invalid value for "
            r"`decay_steps`",
        ),
        (lambda: schedules.PiecewiseConstantDecay([1, 2], [0.1]), r"expected one more value"),
        (lambda: schedules.PiecewiseConstantDecay([2, 1], [0.1, 0.1, 0.1]), r"increasing"),
        (lambda: schedules.CosineDecay(0.1, 10, warmup_steps=-1), r"`warmup_steps`"),
        (lambda: schedules.CosineDecayRestarts(0.1, 10, t_mul=0.0), r"`t_mul`"),
    ],
)
def test_argument_errors(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_learning_rate_is_readable_and_settable():
    opt = OPT.RMSprop(0.01)
    assert opt.learning_rate == 0.01
    opt.learning_rate = 0.5
    assert opt.current_learning_rate == 0.5
    with pytest.raises(ValueError, match=r"RMSprop: invalid value for `learning_rate`"):
        opt.learning_rate = -1.0
    sched = schedules.ExponentialDecay(0.1, 1, 0.5)
    opt.learning_rate = sched
    assert opt.learning_rate is sched and opt.current_learning_rate == 0.1


def test_apply_and_apply_gradients_update_in_place():
    w, b = np.ones((2, 2)), np.zeros(2)
    opt = OPT.SGD(0.5)
    opt.apply([np.ones((2, 2)), np.full(2, 2.0)], [w, b])
    np.testing.assert_array_equal(w, np.full((2, 2), 0.5))
    np.testing.assert_array_equal(b, np.full(2, -1.0))
    opt.apply([None, np.ones(2)])  # known variables; None skips
    np.testing.assert_array_equal(b, np.full(2, -1.5))
    opt.apply_gradients([(np.ones(2), b)])
    assert opt.iterations == 3 and b[0] == -2.0
    with pytest.raises(ValueError, match=r"unknown variable of shape \(3,\)"):
        opt.apply([np.ones(3)], [np.zeros(3)])
    with pytest.raises(ValueError, match=r"expected a gradient of shape \(2,\)"):
        opt.apply_gradients([(np.ones(3), b)])
    with pytest.raises(TypeError, match=r"writable float ndarrays"):
        OPT.Adam().apply([np.ones(2)], [[0.0, 1.0]])
    with pytest.raises(ValueError, match=r"pass `variables` on the first call"):
        OPT.Adam().apply([np.ones(2)])


def test_float32_parameters_stay_float32():
    for name in OPT.OPTIMIZERS:
        w = np.ones(3, dtype=np.float32)
        OPT.get(name).apply_gradients([(np.full(3, 0.5, dtype=np.float32), w)])
        assert w.dtype == np.float32 and np.isfinite(w).all(), name


def test_existing_sgd_and_adam_keep_l2_weight_decay():
    p, q = np.ones(2), np.ones(2)
    OPT.SGD(0.1, weight_decay=0.5).step({"p": (p, np.zeros(2))})
    np.testing.assert_allclose(p, 1 - 0.1 * 0.5)
    OPT.Adam(0.1, weight_decay=0.5).step({"q": (q, np.zeros(2))})
    np.testing.assert_allclose(q, 1 - 0.1, rtol=1e-6)  # an Adam step along the L2 gradient


@pytest.mark.parametrize("name", sorted(OPT.OPTIMIZERS))
def test_compile_by_name_trains(name):
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((16, 4)), rng.integers(0, 3, 16)
    model = _model(name)
    first, _ = model.train_step(x, y)
    for _ in range(30):
        last, _ = model.train_step(x, y)
    assert type(model.optimizer).__name__.lower() == name
    assert model.optimizer.iterations == 31 and last < first
