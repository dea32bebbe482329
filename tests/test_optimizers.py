"""Optimizers against torch.optim, schedules, and argument errors."""

from __future__ import annotations

import numpy as np
import pytest

import layernet as ln

torch = pytest.importorskip("torch", reason="PyTorch is the oracle; install the 'oracle' extra")


def run_both(ours, make_theirs, steps: int = 6):
    rng = np.random.default_rng(0)
    p = rng.standard_normal((3, 4))
    grads = [rng.standard_normal((3, 4)) for _ in range(steps)]
    tp = torch.tensor(p.copy(), requires_grad=True)
    theirs = make_theirs([tp])
    for g in grads:
        ours.step({"p": (p, g.copy())})
        tp.grad = torch.tensor(g)
        theirs.step()
    return p, tp.detach().numpy()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"learning_rate": 0.1},
        {"learning_rate": 0.1, "momentum": 0.9},
        {"learning_rate": 0.05, "momentum": 0.8, "nesterov": True},
        {"learning_rate": 0.1, "momentum": 0.9, "weight_decay": 0.01},
    ],
)
def test_sgd_matches_torch(kwargs):
    torch_kwargs = {
        "lr": kwargs["learning_rate"],
        **{k: v for k, v in kwargs.items() if k != "learning_rate"},
    }
    ours, theirs = run_both(ln.SGD(**kwargs), lambda ps: torch.optim.SGD(ps, **torch_kwargs))
    np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("weight_decay", [0.0, 0.01])
def test_adam_matches_torch(weight_decay):
    ours, theirs = run_both(
        ln.Adam(0.01, weight_decay=weight_decay),
        lambda ps: torch.optim.Adam(ps, lr=0.01, eps=1e-8, weight_decay=weight_decay),
    )
    np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-12)


def test_optimizer_keeps_its_own_state_and_counts_steps():
    opt = ln.SGD(0.1, momentum=0.9)
    p = np.zeros(2)
    opt.step({"a": (p, np.ones(2))})
    assert opt.iterations == 1
    assert set(opt.state) == {"a"} and "velocity" in opt.state["a"]


def test_schedules():
    step = ln.StepDecay(1.0, step_size=2, gamma=0.5)
    assert [step(t) for t in range(6)] == [1.0, 1.0, 0.5, 0.5, 0.25, 0.25]
    cos = ln.CosineDecay(1.0, decay_steps=4, alpha=0.1)
    assert cos(0) == pytest.approx(1.0)
    assert cos(2) == pytest.approx(0.55)
    assert cos(4) == pytest.approx(0.1) and cos(9) == pytest.approx(0.1)
    opt = ln.SGD(step)
    p = np.zeros(1)
    for _ in range(3):
        opt.step({"p": (p, np.ones(1))})
    assert p[0] == pytest.approx(-(1.0 + 1.0 + 0.5))
    opt = ln.SGD(lambda t: 0.1 / (1 + t))
    assert opt.current_learning_rate == pytest.approx(0.1)


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (
            lambda: ln.SGD(0),
            r"SGD: invalid value for `learning_rate`: expected a finite number "
            r"> 0, received 0",
        ),
        (lambda: ln.SGD(-0.1), r"`learning_rate`.*received -0.1"),
        (lambda: ln.SGD(float("nan")), r"`learning_rate`.*received nan"),
        (lambda: ln.SGD(0.1, momentum=1.0), r"`momentum`: expected a number in \[0, 1\)"),
        (lambda: ln.SGD(0.1, nesterov=True), r"`nesterov=True` needs a positive `momentum`"),
        (lambda: ln.SGD(0.1, weight_decay=-1), r"`weight_decay`"),
        (lambda: ln.Adam(beta_1=1.5), r"Adam: invalid value for `beta_1`"),
        (lambda: ln.StepDecay(0.1, step_size=0), r"StepDecay: invalid value for `step_size`"),
        (
            lambda: ln.CosineDecay(0.1, decay_steps=-3),
            r"CosineDecay: invalid value for "
            r"`decay_steps`",
        ),
    ],
)
def test_optimizer_argument_errors(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_schedule_returning_garbage_is_caught():
    opt = ln.SGD(lambda t: float("nan"))
    with pytest.raises(ValueError, match=r"schedule returned nan at step 0"):
        opt.step({"p": (np.zeros(1), np.ones(1))})
