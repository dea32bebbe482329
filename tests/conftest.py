"""Shared test configuration: hypothesis profiles and the optional PyTorch oracle."""

import os

# Keras 3 is a test oracle on its JAX backend (set before any test imports keras).
os.environ.setdefault("KERAS_BACKEND", "jax")

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "default",
    max_examples=int(os.environ.get("LAYERNET_HYPOTHESIS_EXAMPLES", "40")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,
)
settings.load_profile("default")


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)


@pytest.fixture(params=[1, 2], ids=["1 thread", "2 threads"])
def budget(request):
    """layernet's BLAS thread budget set to 1, then 2, for the test; put back after."""
    import layernet as ln

    before = ln.get_num_threads()
    ln.set_num_threads(request.param)
    yield request.param
    ln.set_num_threads(before)


@pytest.fixture
def forced():
    """``force(block_bytes, parts)``: the convolutions' patch blocks set to ``block_bytes``,
    work split into ``parts`` threads whatever its size; all put back after the test."""
    import layernet as ln
    from layernet import _ops, threads

    saved = (_ops.PATCH_BLOCK_BYTES, threads.MIN_SPLIT_SIZE, threads.ADAPT_TO_LOAD)
    before = ln.get_num_threads()

    def force(block_bytes: int, parts: int) -> None:
        _ops.PATCH_BLOCK_BYTES = block_bytes
        threads.MIN_SPLIT_SIZE, threads.ADAPT_TO_LOAD = 0, False
        ln.set_num_threads(parts)

    yield force
    _ops.PATCH_BLOCK_BYTES, threads.MIN_SPLIT_SIZE, threads.ADAPT_TO_LOAD = saved
    ln.set_num_threads(before)
