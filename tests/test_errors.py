"""Bad input gets a clear error naming the layer and argument, expectation and what came."""

from __future__ import annotations

import numpy as np
import pytest

import layernet as ln


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (
            lambda: ln.Conv(0, 3, name="c"),
            r"Conv 'c': invalid value for `filters`: expected a "
            r"positive int, received 0",
        ),
        (lambda: ln.Conv(-2, 3), r"`filters`.*received -2"),
        (lambda: ln.Conv(2.5, 3), r"`filters`.*received 2.5"),
        (lambda: ln.Conv(True, 3), r"`filters`.*received True"),
        (lambda: ln.Conv(2, 0), r"`kernel_size`: expected positive ints, received 0"),
        (lambda: ln.Conv(2, (3, "a")), r"`kernel_size`.*received \(3, 'a'\)"),
        (lambda: ln.Conv(2, 3, strides=0), r"`strides`: expected positive ints, received 0"),
        (lambda: ln.Conv(2, 3, strides=(1, -1)), r"`strides`.*received \(1, -1\)"),
        (
            lambda: ln.Conv(2, 3, dilation_rate=0),
            r"`dilation_rate`: expected positive ints, received 0",
        ),
        (lambda: ln.Conv(2, 3, padding=-1), r"`padding`: expected 'valid', 'same'.*received -1"),
        (lambda: ln.Conv(2, 3, padding="full"), r"`padding`.*received 'full'"),
        (lambda: ln.Conv(2, 3, padding=((1, -1),)), r"`padding`.*received \(\(1, -1\),\)"),
        (lambda: ln.Conv(2, (3, 3), strides=(1, 1, 1)), r"`strides`: expected 2 values"),
        (lambda: ln.Conv(2, (3, 3), padding=(1, 1, 1)), r"`padding`: expected 2 entries"),
        (lambda: ln.Conv(2, 3, use_bias="yes"), r"`use_bias`: expected a bool"),
        (
            lambda: ln.Conv(2, 3, kernel_initializer="magic"),
            r"`kernel_initializer`: expected "
            r"one of",
        ),
        (
            lambda: ln.Conv(2, 3, dtype="float16"),
            r"`dtype`: expected 'float32' or 'float64', "
            r"received 'float16'",
        ),
        (
            lambda: ln.MaxPool(0),
            r"MaxPool '.*': invalid value for `pool_size`: expected positive "
            r"ints, received 0",
        ),
        (lambda: ln.AvgPool(2, strides=0), r"AvgPool '.*': invalid value for `strides`"),
        (lambda: ln.MaxPool(2, padding=-1), r"`padding`.*received -1"),
        (lambda: ln.Dense(0), r"Dense '.*': invalid value for `units`: expected a positive int"),
        (lambda: ln.ReLU(name=""), r"`name`: expected a non-empty str"),
        (lambda: ln.ReLU(seed=-1), r"`seed`: expected a non-negative int"),
    ],
)
def test_bad_hyperparameters(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_wrong_rank_names_layer_and_layout():
    conv = ln.Conv1D(4, 3, name="conv_1")
    with pytest.raises(
        ValueError,
        match=r"Conv1D 'conv_1': expected input with 3 dims \(batch, "
        r"length, channels\), got shape \(40,\)",
    ):
        conv.forward(np.zeros(40))
    with pytest.raises(
        ValueError,
        match=r"expected input with 4 dims \(batch, height, width, "
        r"channels\), got shape \(2, 8, 1\)",
    ):
        ln.Conv2D(4, 3).forward(np.zeros((2, 8, 1)))
    with pytest.raises(ValueError, match=r"at least 3 dims"):
        ln.Conv(4, 3).forward(np.zeros((2, 8)))
    with pytest.raises(ValueError, match=r"MaxPool2D '.*': expected input with 4 dims"):
        ln.MaxPool2D(2).forward(np.zeros((2, 8, 1)))
    with pytest.raises(ValueError, match=r"at least 2 dims \(batch, \.\.\.\)"):
        ln.Dense(3).forward(np.zeros(5))


def test_rank_fixed_by_first_input():
    conv = ln.Conv(2, 3)
    conv.forward(np.zeros((1, 10, 1)))
    with pytest.raises(ValueError, match=r"expected input with 3 dims"):
        conv.forward(np.zeros((1, 10, 10, 1)))


def test_channels_differ_from_built_kernel():
    conv = ln.Conv(4, 3, name="c")
    conv.forward(np.zeros((2, 10, 3)))
    with pytest.raises(
        ValueError,
        match=r"Conv 'c': expected input with 3 channels \(last axis, "
        r"as built\), got shape \(2, 10, 5\)",
    ):
        conv.forward(np.zeros((2, 10, 5)))
    dense = ln.Dense(2, name="d")
    dense.forward(np.zeros((1, 4)))
    with pytest.raises(ValueError, match=r"Dense 'd': expected input with 4 features"):
        dense.forward(np.zeros((1, 5)))


def test_kernel_larger_than_padded_input():
    with pytest.raises(
        ValueError,
        match=r"Conv '.*': kernel \(dilated extent \(5,\)\) is larger "
        r"than the padded input \(4,\)",
    ):
        ln.Conv(1, 5).forward(np.zeros((1, 4, 1)))
    with pytest.raises(ValueError, match=r"dilated extent \(5,\).*padded input \(4,\)"):
        ln.Conv(1, 3, dilation_rate=2).output_shape((None, 4, 1))
    # padding can make it fit
    assert ln.Conv(1, 5, padding=1).output_shape((None, 4, 1)) == (None, 2, 1)
    with pytest.raises(ValueError, match=r"pool window \(3, 3\) is larger than the padded input"):
        ln.MaxPool(3).forward(np.zeros((1, 2, 5, 1)))


def test_pool_padding_must_be_smaller_than_window():
    with pytest.raises(ValueError, match=r"expected less than pool_size \(2,\) on each side"):
        ln.MaxPool(2, padding=2).forward(np.zeros((1, 6, 1)))


@pytest.mark.parametrize(
    "bad",
    [
        np.array(["a", "b"], dtype=object).reshape(1, 2, 1),
        np.array([["x", "y"]]),
        np.zeros((1, 3, 1), dtype=complex),
        [[1, [2]]],
        {"a": 1},
    ],
)
def test_non_numeric_input(bad):
    with pytest.raises(TypeError, match=r"Conv '.*': expected `input` to be a (real )?numeric"):
        ln.Conv(1, 1).forward(bad)


def test_backward_before_forward():
    conv = ln.Conv(1, 3, name="c")
    with pytest.raises(RuntimeError, match=r"Conv 'c': backward called before forward"):
        conv.backward_input(np.zeros((1, 8, 1)))
    with pytest.raises(RuntimeError, match=r"backward called before forward"):
        conv.backward_params(np.zeros((1, 8, 1)))
    with pytest.raises(RuntimeError, match=r"MSELoss '.*': backward called before forward"):
        ln.MSELoss().backward_input()


def test_dy_of_wrong_shape():
    relu = ln.ReLU(name="r")
    relu.forward(np.zeros((2, 3)))
    with pytest.raises(
        ValueError,
        match=r"ReLU 'r': expected `dy` of shape \(2, 3\) \(the shape "
        r"of the last output\), got shape \(3, 2\)",
    ):
        relu.backward_input(np.zeros((3, 2)))
    with pytest.raises(ValueError, match=r"got shape \(2, 3, 1\)"):
        relu.backward_input(np.zeros((2, 3, 1)))  # no silent broadcasting
    with pytest.raises(TypeError, match=r"expected `dy` to be a real numeric array"):
        relu.backward_input(np.array([["a"] * 3] * 2))


def test_loss_targets_are_not_broadcast():
    loss = ln.MSELoss(name="mse")
    with pytest.raises(
        ValueError,
        match=r"MSELoss 'mse': expected target of shape \(4, 1\) \(the "
        r"prediction's shape; nothing is broadcast\), got shape \(4,\)",
    ):
        loss.forward(np.zeros((4, 1)), np.zeros(4))
    ce = ln.SoftmaxCrossEntropy(name="ce")
    with pytest.raises(
        ValueError,
        match=r"SoftmaxCrossEntropy 'ce': expected class labels in "
        r"\[0, 2\] for 3 logits, received labels from 0 to 3",
    ):
        ce.forward(np.zeros((2, 3)), np.array([0, 3]))
    with pytest.raises(
        ValueError,
        match=r"expected target of shape \(2,\) \(integer labels\) or "
        r"\(2, 3\)",
    ):
        ce.forward(np.zeros((2, 3)), np.zeros((2, 4)))
    with pytest.raises(ValueError, match=r"expected integer class labels"):
        ce.forward(np.zeros((2, 3)), np.array([0.5, 1.0]))
    with pytest.raises(ValueError, match=r"probability vectors"):
        ce.forward(np.zeros((2, 3)), np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"expected at least one sample"):
        ce.forward(np.zeros((0, 3)), np.zeros(0, dtype=int))


def test_jacobian_size_limit():
    conv = ln.Conv(4, 3, name="c")
    with pytest.raises(
        ValueError,
        match=r"Conv 'c': jacobian_input would have 3992 x 1000 = "
        r"3,992,000 entries, above max_entries=1,000,000",
    ):
        conv.jacobian_input(np.zeros((1, 1000, 1)), max_entries=1_000_000)


def test_bad_input_shape_argument():
    with pytest.raises(ValueError, match=r"`input_shape`: expected a tuple of non-negative ints"):
        ln.Dense(2).build((None, -3))


def test_gradcheck_refuses_float32():
    with pytest.raises(
        ValueError,
        match=r"gradcheck: ReLU '.*' has dtype float32; expected "
        r"float64",
    ):
        ln.gradcheck(ln.ReLU(), np.ones((1, 2)))
