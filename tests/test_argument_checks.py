"""Every bad argument is caught where it is given, with one rule for numbers everywhere."""

from __future__ import annotations

import math

import numpy as np
import pytest

import layernet as ln
from layernet._validation import (
    cast_checked,
    check_class_weight,
    check_initial_epoch,
    check_number,
    classes_of_output,
)

NUMPY_SCALARS = [np.float32, np.float64, np.int64, np.int32]


# ------------------------------------------------------- the rule for numbers
@pytest.mark.parametrize("kind", [float, int, *NUMPY_SCALARS])
def test_python_and_numpy_scalars_are_accepted_alike(kind):
    assert check_number(kind(0), "x", "f", low=0, high=1, high_open=True) == 0.0
    assert ln.Dropout(kind(0)).rate == 0.0
    assert ln.BatchNorm(momentum=kind(0), epsilon=kind(1)).epsilon == 1.0
    assert ln.SGD(kind(1), momentum=kind(0)).learning_rate == 1.0
    assert ln.Adam(kind(1)).learning_rate == 1.0
    assert ln.EarlyStopping(patience=kind(1) if kind in (int, np.int64, np.int32) else 1)


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: ln.Dropout(np.float32(0.25)), None),
        (lambda: ln.BatchNorm(momentum=np.float32(0.5)), None),
        (lambda: ln.BatchNorm(epsilon=math.inf), r"`epsilon`: expected a finite number >= 0"),
        (lambda: ln.BatchNorm(epsilon=math.nan), r"`epsilon`: expected a finite number"),
        (lambda: ln.BatchNorm(momentum=np.float64("nan")), r"`momentum`: expected a number in"),
        (lambda: ln.Dropout(np.bool_(True)), r"`rate`: expected a number in \[0, 1\)"),
        (lambda: ln.Dropout("0.5"), r"`rate`.*received '0.5'"),
        (lambda: ln.SGD(math.inf), r"`learning_rate`: expected a finite number > 0"),
        (lambda: ln.SGD(0.1, momentum=np.float32(1.0)), r"`momentum`: expected a number in"),
        (lambda: ln.Adam(epsilon=0.0), r"`epsilon`: expected a finite number > 0"),
        (lambda: ln.StepDecay(0.1, step_size=np.int64(0)), r"`step_size`: expected a positive"),
        (lambda: ln.EarlyStopping(min_delta=math.inf), r"`min_delta`: expected a finite"),
        (lambda: ln.EarlyStopping(patience=1.5), r"`patience`: expected an int >= 0"),
        (lambda: ln.EarlyStopping(monitor=3), r"`monitor`: expected the name of a logged"),
        (lambda: ln.EarlyStopping(restore_best_weights=1), r"`restore_best_weights`: expected"),
    ],
)
def test_numeric_hyperparameters(make, match):
    if match is None:
        make()
        return
    with pytest.raises(ValueError, match=match):
        make()


def test_numpy_ints_are_ints_everywhere():
    assert ln.Dense(np.int64(3)).units == 3
    assert ln.MaxPool1D(np.int32(2)).pool_size == (2,)
    ln.set_seed(np.int64(3))
    ln.set_seed(None)


# ------------------------------------------------------------------- dtypes
def test_dtype_none_means_the_float32_default():
    assert ln.Dense(2, dtype=None).dtype == np.float32
    assert ln.ReLU(dtype=None).dtype == ln.ReLU().dtype == np.float32
    assert ln.MSELoss(dtype=None).dtype == np.float32
    with pytest.raises(ValueError, match=r"`dtype`: expected 'float32' or 'float64'"):
        ln.Dense(2, dtype="complex128")
    with pytest.raises(ValueError, match=r"`dtype`.*received 'nonsense'"):
        ln.Dense(2, dtype="nonsense")


# ------------------------------------------------- layers checked when built
@pytest.mark.parametrize(
    "make",
    [
        lambda: ln.MaxPool1D(2, padding=2),
        lambda: ln.MaxPool((2, 3), padding=(1, 3)),
        lambda: ln.AvgPool(3, padding=((0, 3),)),
        lambda: ln.AvgPool2D(2, padding=5),
    ],
)
def test_pool_padding_not_smaller_than_the_window_is_refused_at_construction(make):
    with pytest.raises(ValueError, match=r"`padding`: expected less than pool_size"):
        make()


def test_pool_padding_smaller_than_the_window_is_accepted():
    pool = ln.MaxPool1D(3, padding=2)
    assert pool(np.arange(8.0).reshape(1, 4, 2)).shape == (1, 2, 2)


def test_batchnorm_refuses_zero_channels():
    with pytest.raises(ValueError, match=r"BatchNorm '.*': expected at least one channel"):
        ln.BatchNorm()(np.zeros((2, 0)))


def test_masked_arrays_are_refused_with_a_clear_error():
    x = np.ma.masked_array([[1.0, 2.0]], mask=[[0, 1]])
    with pytest.raises(TypeError, match=r"ReLU '.*': expected `input` to be a plain .*masked"):
        ln.ReLU()(x)
    model = ln.Sequential([ln.Dense(1)])
    with pytest.raises(TypeError, match=r"predict: expected `x` to be a plain numeric array"):
        model.predict(x)


# ------------------------------------------------------ gradcheck, Jacobians
def test_gradcheck_arguments():
    layer = ln.Dense(2, dtype="float64", seed=0)
    x = np.ones((1, 3))
    with pytest.raises(ValueError, match=r"gradcheck: invalid value for `eps`: expected a finite"):
        ln.gradcheck(layer, x, eps=0)
    with pytest.raises(ValueError, match=r"`eps`"):
        ln.gradcheck(layer, x, eps=math.nan)
    with pytest.raises(ValueError, match=r"`tol`: expected a finite number >= 0"):
        ln.gradcheck(layer, x, tol=-1)
    with pytest.raises(ValueError, match=r"`max_entries`: expected a positive int"):
        ln.gradcheck(layer, x, max_entries=None)
    assert ln.gradcheck(layer, x, eps=np.float32(1e-6), max_entries=np.int64(100)).passed


def test_jacobian_max_entries_is_checked():
    layer = ln.Dense(2, dtype="float64", seed=0)
    with pytest.raises(ValueError, match=r"Dense '.*': .*`max_entries`: expected a positive int"):
        layer.jacobian_input(np.ones((1, 3)), max_entries=None)
    with pytest.raises(ValueError, match=r"MSELoss '.*': .*`max_entries`: expected a positive"):
        ln.MSELoss().jacobian_input(np.ones((1, 3)), np.ones((1, 3)), max_entries=0)


# --------------------------------------------------------------- callbacks
@pytest.mark.parametrize(
    ("template", "match"),
    [
        ("ckpt-{epoch", r"is not a valid format template"),
        ("ckpt-{}.npz", r"has the field \{\}"),
        ("ckpt-{0}.npz", r"has the field \{0\}"),
        ("ckpt-{epoch.real}.npz", r"has the field \{epoch.real\}"),
        ("ckpt-{val_loss:q}.npz", r"cannot be formatted"),
    ],
)
def test_checkpoint_templates_are_checked_at_construction(template, match):
    with pytest.raises(
        ValueError, match=r"ModelCheckpoint: invalid value for `filepath`.*" + match
    ):
        ln.ModelCheckpoint(template)


def test_checkpoint_template_keys_against_the_logs():
    cb = ln.ModelCheckpoint("ckpt-{epoch:02d}-{val_los:.2f}.npz")
    with pytest.raises(ValueError, match=r"names \['val_los'\], which the logs will not hold"):
        cb.check_logs({"loss", "val_loss", "learning_rate"})
    ln.ModelCheckpoint("ckpt-{epoch:02d}-{val_loss:.2f}.npz").check_logs({"loss", "val_loss"})
    with pytest.raises(TypeError, match=r"`filepath`: expected a str or path"):
        ln.ModelCheckpoint(3)
    with pytest.raises(ValueError, match=r"`save_best_only`: expected a bool"):
        ln.ModelCheckpoint("m.npz", save_best_only="yes")


# ---------------------------------------------------------- numeric faults
def test_casting_overflow_is_reported_as_overflow():
    x = np.array([[1.0, 1e300, -1e200]])
    with pytest.raises(ValueError, match=r"2 value\(s\) too large for float32.*overflows.*1e\+300"):
        cast_checked(x, np.dtype("float32"), "predict", "x")
    with pytest.raises(ValueError, match=r"contains 1 non-finite value"):
        cast_checked(np.array([np.inf]), np.dtype("float32"), "predict", "x")
    assert cast_checked(x, np.dtype("float64"), "predict", "x") is x


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
def test_an_update_that_overflows_on_the_last_step_is_undone(capsys):
    model = ln.Sequential([ln.Dense(1, use_bias=False, seed=0)])
    model.build((None, 1))
    model.layers[0].params["kernel"][...] = 1.0
    model.compile(ln.SGD(1e38), "mse")
    x = np.ones((1, 1), np.float32)
    y = np.full((1, 1), -1e1, np.float32)
    model.fit(x, y, epochs=1, batch_size=1, verbose=0)  # one step: W - 1e38 * 11 -> -inf
    w = model.layers[0].params["kernel"]
    assert np.isfinite(w).all() and w[0, 0] == 1.0
    assert "update overflowed" in capsys.readouterr().err


# ------------------------------------------------- fit checks before step one
def compiled_model() -> tuple[ln.Sequential, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((20, 4)).astype(np.float32)
    y = rng.integers(0, 3, 20)
    model = ln.Sequential([ln.Dense(3, seed=0)])
    model.compile(ln.SGD(0.1), "softmax_cross_entropy", ["accuracy"])
    return model, x, y


def assert_no_step(model: ln.Sequential, before: list[np.ndarray] | None) -> None:
    assert model.optimizer.iterations == 0
    if before is not None:
        for a, b in zip(before, model.get_weights(), strict=True):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("built", [False, True])
@pytest.mark.parametrize(
    ("make_val", "error", "match"),
    [
        (
            lambda x, y: (x[:5, :3], y[:5]),
            ValueError,
            r"fit: (the validation data do not fit|invalid `validation_data`).*(5|None), 3\)",
        ),
        (
            lambda x, y: (x[:5], y[:4]),
            ValueError,
            r"fit: invalid `validation_data`: `x_val` and `y_val` have different numbers",
        ),
        (
            lambda x, y: (x[:5], np.full(5, 7)),
            ValueError,
            r"fit: `y_val` \(validation data\) does not fit the model's output",
        ),
        (
            lambda x, y: (x[:5].astype(str), y[:5]),
            TypeError,
            r"fit: invalid `validation_data`: expected `x_val` to be a real numeric array",
        ),
        (lambda x, y: x[:5], ValueError, r"invalid value for `validation_data`: expected a tuple"),
    ],
)
def test_bad_validation_data_is_refused_before_the_first_step(built, make_val, error, match):
    model, x, y = compiled_model()
    before = None
    if built:
        model.build((None, 4))
        before = model.get_weights()
    with pytest.raises(error, match=match):
        model.fit(x, y, validation_data=make_val(x, y), epochs=2, verbose=0)
    assert_no_step(model, before)


@pytest.mark.parametrize(
    ("callbacks", "match"),
    [
        (ln.EarlyStopping(monitor="loss"), r"`callbacks`: expected a list of Callback.*\[cb\]"),
        ("early_stopping", r"`callbacks`: expected a list of Callback instances, received str"),
        ([object()], r"`callbacks`: expected Callback instances.*received object .* at index 0"),
        ([ln.History(), len], r"`callbacks`: expected Callback instances.*at index 1"),
    ],
)
def test_callbacks_of_the_wrong_type_are_refused(callbacks, match):
    model, x, y = compiled_model()
    with pytest.raises(TypeError, match=match):
        model.fit(x, y, callbacks=callbacks, verbose=0)
    assert_no_step(model, None)


def test_checkpoint_template_typo_is_refused_before_training(tmp_path):
    model, x, y = compiled_model()
    cb = ln.ModelCheckpoint(str(tmp_path / "m-{epoch:02d}-{val_acuracy:.2f}.npz"))
    with pytest.raises(ValueError, match=r"names \['val_acuracy'\], which the logs will not"):
        model.fit(x, y, validation_split=0.25, callbacks=[cb], verbose=0)
    assert_no_step(model, None)
    assert list(tmp_path.iterdir()) == []
    # without validation data there are no val_* values
    cb = ln.ModelCheckpoint(str(tmp_path / "m-{val_loss:.2f}.npz"))
    with pytest.raises(ValueError, match=r"val_\* values need validation data"):
        model.fit(x, y, callbacks=[cb], verbose=0)
    # the learning rate is logged only by a learning-rate callback (as in Keras)
    cb = ln.ModelCheckpoint(str(tmp_path / "m-{learning_rate}.npz"))
    with pytest.raises(ValueError, match=r"names \['learning_rate'\], which the logs will not"):
        model.fit(x, y, callbacks=[cb], verbose=0)
    ok = ln.ModelCheckpoint(
        str(tmp_path / "m-{epoch:02d}-{val_accuracy:.2f}-{learning_rate:.2f}.npz")
    )
    rate = ln.LearningRateScheduler(lambda epoch: 0.05)
    model.fit(x, y, validation_split=np.float32(0.25), callbacks=[rate, ok], verbose=0)
    assert [p.name for p in tmp_path.iterdir()] == [
        f"m-01-{model.history.history['val_accuracy'][0]:.2f}-0.05.npz"
    ]


def test_monitored_values_are_checked_before_training():
    model, x, y = compiled_model()
    with pytest.raises(ValueError, match=r"EarlyStopping: monitored value 'val_loss' is not in"):
        model.fit(x, y, callbacks=[ln.EarlyStopping()], verbose=0)
    with pytest.raises(ValueError, match=r"ModelCheckpoint: monitored value 'val_loss' is not"):
        model.fit(x, y, callbacks=[ln.ModelCheckpoint("m.npz", save_best_only=True)], verbose=0)
    assert_no_step(model, None)


@pytest.mark.parametrize("split", [np.float32(0.25), np.float64(0.25), 0.25])
def test_validation_split_takes_any_real_scalar(split):
    model, x, y = compiled_model()
    history = model.fit(x, y, validation_split=split, verbose=0)
    assert "val_loss" in history.history


@pytest.mark.parametrize("split", [math.nan, math.inf, np.bool_(False), "0.2"])
def test_validation_split_refuses_non_numbers(split):
    model, x, y = compiled_model()
    with pytest.raises(ValueError, match=r"`validation_split`: expected a number in \[0, 1\)"):
        model.fit(x, y, validation_split=split, verbose=0)


def test_input_overflowing_the_model_dtype_is_reported_as_overflow():
    model, x, y = compiled_model()
    big = x.astype(np.float64)
    big[3, 1] = 1e39
    with pytest.raises(ValueError, match=r"fit: `x` has 1 value\(s\) too large for float32"):
        model.fit(big, y, verbose=0)
    with pytest.raises(ValueError, match=r"predict: `x` has 1 value\(s\) too large for float32"):
        model.predict(big)
    big[3, 1] = np.inf
    with pytest.raises(ValueError, match=r"`x` contains 1 non-finite value"):
        model.predict(big)


def test_checkpoint_folder_that_does_not_exist_is_created_as_keras_does(tmp_path):
    model, x, y = compiled_model()
    cb = ln.ModelCheckpoint(str(tmp_path / "missing" / "m-{epoch}.npz"), monitor="loss")
    model.fit(x, y, epochs=2, callbacks=[cb], verbose=0)
    assert sorted(p.name for p in (tmp_path / "missing").iterdir()) == ["m-1.npz", "m-2.npz"]


def test_targets_overflowing_the_model_dtype_are_reported_as_overflow():
    model = ln.Sequential([ln.Dense(2, seed=0)])
    model.compile("sgd", "mse")
    x, y = np.ones((4, 3)), np.ones((4, 2))
    y[1, 1] = 1e300
    with pytest.raises(ValueError, match=r"`y` .*`target` has 1 value\(s\) too large for float32"):
        model.fit(x, y, verbose=0)
    assert model.optimizer.iterations == 0
    model.compile("sgd", "softmax_cross_entropy")
    with pytest.raises(ValueError, match=r"probability vectors"):
        model.fit(x, y, verbose=0)


@pytest.mark.parametrize("kind", [np.float32, np.float64, float])
def test_numpy_scalars_in_the_keras_style_classes(kind):
    assert ln.metrics.BinaryAccuracy(threshold=kind(0.25)).threshold == 0.25
    assert ln.LeakyReLU(kind(0.5)).negative_slope == 0.5
    assert ln.ReduceLROnPlateau(factor=kind(0.5), patience=np.int64(2)).patience == 2
    with pytest.raises(ValueError, match=r"`threshold`: expected a finite number"):
        ln.metrics.BinaryAccuracy(threshold=kind("nan"))
    with pytest.raises(ValueError, match=r"`factor`: expected a number in \[0, 1\)"):
        ln.ReduceLROnPlateau(factor=kind(1.0))


# ------------------------------------------------------- dtypes
BAD_DTYPES = ["bogus", 3, np.complex64, "float16", "object", "bool", object()]


@pytest.mark.parametrize("bad", BAD_DTYPES, ids=repr)
def test_input_dtype_gets_the_standard_message(bad):
    with pytest.raises(
        ValueError,
        match=r"^Input: invalid value for `dtype`: expected one of "
        r"\['float32', 'float64', 'int32', 'int64'\]",
    ):
        ln.Input((3,), dtype=bad)


@pytest.mark.parametrize("dtype", ["float32", "float64", "int32", "int64", np.int64, None])
def test_input_accepts_float_values_and_integer_ids(dtype):
    inp = ln.Input((3,), dtype=dtype)
    assert inp.dtype == np.dtype(dtype or "float32").name  # Keras: float32 by default
    model = ln.Sequential([inp, ln.Dense(2, seed=0)])
    x = np.arange(6).reshape(2, 3).astype(dtype or "float32")
    assert model.predict(x, verbose=0).dtype == np.float32  # the layer computes in its own dtype


@pytest.mark.parametrize("bad", [*BAD_DTYPES, "int32", "int64"], ids=repr)
def test_every_layer_loss_and_helper_refuses_other_dtypes_alike(bad):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from test_every_layer import CASES, REGISTERED

    makers = {
        name: (
            lambda name=name: REGISTERED[name](
                **(CASES[name][0]("float64", 0) if callable(CASES[name][0]) else CASES[name][0]),
                dtype=bad,
            )
        )
        for name in REGISTERED
        if name != "InputLayer"  # its dtype is the data's (integer ids too), as Input's
    }
    makers["MSELoss"] = lambda: ln.MSELoss(dtype=bad)
    makers["losses.get"] = lambda: ln.losses.get("softmax_cross_entropy", dtype=bad)
    makers["to_categorical"] = lambda: ln.utils.to_categorical([0, 1], dtype=bad)
    for name, make in makers.items():
        with pytest.raises(
            ValueError,
            match=r"invalid value for `dtype`: expected 'float32' or "
            r"'float64'",
        ) as info:
            make()
        assert "TypeError" not in str(info.value), name


# ------------------------------------------------------- class_weight, initial_epoch
@pytest.mark.parametrize("num_classes", [2, 3, 10])
def test_class_weight_keys_are_classes_the_loss_can_see(num_classes):
    full = {c: 1.0 + c for c in range(num_classes)}
    assert check_class_weight(full, num_classes) == full
    assert check_class_weight({np.int64(0): np.float32(0.5)}, num_classes) == {0: 0.5}
    assert check_class_weight(None, num_classes) is None
    for key in (num_classes, num_classes + 5, -1):
        with pytest.raises(
            ValueError,
            match=rf"`class_weight` has key {key}, which is not a class "
            rf"the loss can see",
        ):
            check_class_weight({key: 1.0}, num_classes)


@pytest.mark.parametrize("weight", [-1, -0.5, math.nan, math.inf, "2", True, None])
def test_class_weights_are_finite_and_not_negative(weight):
    with pytest.raises(
        ValueError,
        match=r"`class_weight` gives class 1 the weight .*: expected a "
        r"finite number >= 0",
    ):
        check_class_weight({0: 1.0, 1: weight}, 3)


@pytest.mark.parametrize("bad", [[1.0, 2.0], "balanced", {1.5: 1.0}, {"0": 1.0}, {True: 1.0}])
def test_class_weight_must_be_a_dict_of_int_keys(bad):
    with pytest.raises(ValueError, match=r"fit: invalid value for `class_weight`"):
        check_class_weight(bad, None)


def test_classes_of_output():
    assert classes_of_output((None, 1)) == 2  # one logit: binary
    assert classes_of_output((None, 7)) == 7
    assert classes_of_output((None, 4, 5)) == 5
    assert classes_of_output((None, None)) is None


@pytest.mark.parametrize(("initial", "epochs"), [(1, 1), (4, 4), (5, 4), (3, 0)])
def test_initial_epoch_at_or_past_epochs_is_refused(initial, epochs):
    with pytest.raises(
        ValueError,
        match=rf"fit: `initial_epoch`={initial} is not below "
        rf"`epochs`={epochs}, so no epoch would be trained",
    ):
        check_initial_epoch(initial, epochs)


@pytest.mark.parametrize(("initial", "epochs"), [(0, 0), (0, 1), (2, 4), (np.int64(3), 4)])
def test_initial_epoch_below_epochs_passes(initial, epochs):
    assert check_initial_epoch(initial, epochs) == int(initial)


@pytest.mark.parametrize("bad", [-1, 1.0, "2", None, True])
def test_initial_epoch_is_a_non_negative_int(bad):
    with pytest.raises(
        ValueError,
        match=r"fit: invalid value for `initial_epoch`: expected an int "
        r">= 0",
    ):
        check_initial_epoch(bad, 5)
