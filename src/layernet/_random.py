"""The global seed from which layers without their own ``seed`` draw their generators."""

from __future__ import annotations

import numpy as np

from ._validation import is_int

_root = np.random.SeedSequence()


def set_seed(seed: int | None) -> None:
    """Seed every generator layernet creates from now on (weight init, shuffling).

    Layers built after this call without an explicit ``seed`` draw their
    generators from one :class:`numpy.random.SeedSequence` in build order, so a
    script that calls ``set_seed(0)`` first gives bit-identical weights on every run.

    Parameters
    ----------
    seed : int or None
        The root seed, a non-negative int; ``None`` draws fresh entropy from the
        operating system.

    Raises
    ------
    ValueError
        ``set_seed: expected a non-negative int or None, received ...``.

    See Also
    --------
    layernet.training.trainer.Trainer.fit : its ``seed`` argument seeds the shuffling of one run.

    Examples
    --------
    >>> import layernet as ln
    >>> ln.set_seed(0)
    >>> first = ln.Dense(3)
    >>> first.build((None, 2))
    >>> ln.set_seed(0)
    >>> again = ln.Dense(3)
    >>> again.build((None, 2))
    >>> bool((first.params["kernel"] == again.params["kernel"]).all())
    True
    """
    global _root
    if seed is not None and not (is_int(seed) and seed >= 0):
        raise ValueError(f"set_seed: expected a non-negative int or None, received {seed!r}.")
    _root = np.random.SeedSequence(seed)


def generator(seed: int | None = None) -> np.random.Generator:
    """A generator from ``seed`` if given, else the next child of the global seed."""
    if seed is not None:
        return np.random.default_rng(seed)
    return np.random.default_rng(_root.spawn(1)[0])
