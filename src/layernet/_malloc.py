"""glibc's allocator thresholds, pinned at the upper limit of its own adaptive rule.

A training step allocates its layer outputs and gradients afresh, arrays of a few to a
few tens of megabytes. glibc serves an allocation from ``M_MMAP_THRESHOLD`` bytes on
(128 KB at the start) with a mapping of its own, whose pages the kernel hands out one
fault at a time on first touch and takes back when it is freed: every step pays those
faults again. glibc adapts: when it frees a mapped block larger than the threshold and
of at most 32 MB (the rule's upper limit on 64-bit), it raises the threshold to that
block's size and ``M_TRIM_THRESHOLD``, the free memory it keeps at the top of its heap,
to twice that. So how many faults a step meets depends on which arrays the process
happened to free before. Importing layernet sets both to the rule's upper limits, 32
and 64 MB, so that arrays under 32 MB come from the heap and are reused from the first
step on. Measured on 2 cores (AMD EPYC), processes alternating with the code before
(which left them to glibc): the ResNet block step 0.81-0.84 of its time (three rounds),
and the keras.io MNIST convnet epoch, without the convolutions' large patch matrices
kept, 84,000-112,000 page faults an epoch and 1.2-1.3 s where it ran 0.8-1.0 s with no
faults (see the performance page).

The setting is process-wide: each process that imports layernet (a notebook's kernel,
a forked worker, every rank of a data-parallel run) keeps the arrays under 32 MB it
frees in its heap for later allocations, up to 64 MB free at the heap's top, instead of
handing them back to the system at once.

Not done when ``LAYERNET_PIN_MALLOC`` is ``0`` (or ``false``, ``no``), when the
environment names one of glibc's malloc settings (``MALLOC_MMAP_THRESHOLD_``,
``MALLOC_TRIM_THRESHOLD_``, ``MALLOC_TOP_PAD_``, ``MALLOC_MMAP_MAX_``, even empty,
which glibc reads as 0, or a ``glibc.malloc`` tunable), or where the C library is not
glibc.
"""

from __future__ import annotations

import ctypes
import os
import sys

__all__ = ["MMAP_THRESHOLD", "TRIM_THRESHOLD", "pin_thresholds", "pinned"]

#: ``M_MMAP_THRESHOLD``: allocations from this many bytes get a mapping of their own.
MMAP_THRESHOLD = 32 * 2**20
#: ``M_TRIM_THRESHOLD``: free memory at the top of the heap kept for later allocations.
TRIM_THRESHOLD = 64 * 2**20

_M_TRIM_THRESHOLD = -1  # mallopt's parameter numbers (glibc's malloc.h)
_M_MMAP_THRESHOLD = -3
_USER_SETTINGS = (
    "MALLOC_MMAP_THRESHOLD_",
    "MALLOC_TRIM_THRESHOLD_",
    "MALLOC_TOP_PAD_",
    "MALLOC_MMAP_MAX_",
)

#: Whether :func:`pin_thresholds` set the thresholds in this process.
pinned = False


def _wanted() -> bool:
    """False when the environment turns the pinning off or sets malloc itself."""
    if os.environ.get("LAYERNET_PIN_MALLOC", "1").strip().lower() in ("0", "false", "no"):
        return False
    if any(name in os.environ for name in _USER_SETTINGS):  # (glibc reads "" as 0)
        return False
    return "glibc.malloc." not in os.environ.get("GLIBC_TUNABLES", "")


def _glibc() -> bool:
    """Whether the C library is GNU's (musl and others have no such thresholds)."""
    try:
        return (os.confstr("CS_GNU_LIBC_VERSION") or "").startswith("glibc")
    except (ValueError, OSError):  # pragma: no cover - a platform without the name
        return False


def pin_thresholds() -> bool:
    """Set glibc's ``M_MMAP_THRESHOLD`` and ``M_TRIM_THRESHOLD`` (once); whether they are set.

    Returns False, changing nothing, off Linux, where the C library is not glibc, or
    when the environment asks for it (see the module's notes).
    """
    global pinned
    if pinned:
        return True
    if not sys.platform.startswith("linux") or not _wanted():
        return False
    if not _glibc():
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except Exception:  # pragma: no cover - glibc always has mallopt; importing must not fail
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    # mallopt returns 1 on success; the trim threshold only after the mapping one
    pinned = (
        mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
        and mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
    )
    return pinned
