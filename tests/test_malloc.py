"""glibc's allocator thresholds, pinned when layernet is imported (``layernet._malloc``).

The decision (environment switches, the C library) with a stand-in ``mallopt``, and in
a fresh process the effect itself: a 20 MB array freed and allocated again costs no
page faults once the thresholds are pinned.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from layernet import _malloc

SCRIPT = """
import json, resource
import numpy as np
import layernet._malloc as m
a = np.ones(5 * 2**20, np.float32); del a  # 20 MB, touched, freed
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
a = np.ones(5 * 2**20, np.float32); del a
faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
print(json.dumps({"pinned": m.pinned, "faults": faults}))
"""


class FakeLibc:
    """A C library whose ``mallopt`` records its calls and returns ``result``."""

    def __init__(self, result: int = 1) -> None:
        self.calls: list[tuple[int, int]] = []
        self.result = result

        def mallopt(param: int, value: int) -> int:
            self.calls.append((param, value))
            return self.result

        self.mallopt = mallopt


@pytest.fixture
def fake(monkeypatch):
    """A stand-in glibc, nothing pinned yet and none of the switches set."""
    libc = FakeLibc()
    monkeypatch.setattr(_malloc, "pinned", False)
    monkeypatch.setattr(_malloc.ctypes, "CDLL", lambda name: libc)
    monkeypatch.setattr(_malloc, "_glibc", lambda: True)
    monkeypatch.setattr(_malloc.sys, "platform", "linux")
    for name in (*_malloc._USER_SETTINGS, "LAYERNET_PIN_MALLOC", "GLIBC_TUNABLES"):
        monkeypatch.delenv(name, raising=False)
    return libc


def test_pins_both_thresholds_once(fake):
    assert _malloc.pin_thresholds() is True and _malloc.pinned
    assert fake.calls == [(-3, 32 * 2**20), (-1, 64 * 2**20)]
    assert _malloc.pin_thresholds() is True
    assert len(fake.calls) == 2  # not again


@pytest.mark.parametrize(
    "name, value",
    [
        ("LAYERNET_PIN_MALLOC", "0"),
        ("LAYERNET_PIN_MALLOC", "false"),
        ("LAYERNET_PIN_MALLOC", " No "),
        ("MALLOC_MMAP_THRESHOLD_", "1048576"),
        ("MALLOC_MMAP_THRESHOLD_", ""),
        ("MALLOC_TRIM_THRESHOLD_", " "),
        ("MALLOC_TRIM_THRESHOLD_", "0"),
        ("MALLOC_TOP_PAD_", "65536"),
        ("MALLOC_MMAP_MAX_", "0"),
        ("GLIBC_TUNABLES", "glibc.malloc.mmap_threshold=65536"),
    ],
)
def test_the_environment_turns_it_off(fake, monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    assert _malloc.pin_thresholds() is False and not _malloc.pinned
    assert fake.calls == []


def test_other_settings_leave_it_on(fake, monkeypatch):
    monkeypatch.setenv("LAYERNET_PIN_MALLOC", "1")
    monkeypatch.setenv("GLIBC_TUNABLES", "glibc.cpu.hwcaps=-AVX512F")
    assert _malloc.pin_thresholds() is True


def test_nothing_outside_glibc_on_linux(fake, monkeypatch):
    monkeypatch.setattr(_malloc, "_glibc", lambda: False)
    assert _malloc.pin_thresholds() is False
    monkeypatch.setattr(_malloc, "_glibc", lambda: True)
    monkeypatch.setattr(_malloc.sys, "platform", "darwin")
    assert _malloc.pin_thresholds() is False
    assert fake.calls == []


def test_a_refused_setting_is_not_reported_as_pinned(fake):
    fake.result = 0
    assert _malloc.pin_thresholds() is False and not _malloc.pinned


def run_fresh(**env: str) -> dict:
    """:data:`SCRIPT` in a fresh interpreter with ``env`` added and none of glibc's malloc
    settings: its JSON line."""
    dropped = (*_malloc._USER_SETTINGS, "GLIBC_TUNABLES")
    base = {k: v for k, v in os.environ.items() if k not in dropped}
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        env={**base, **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(
    not (sys.platform.startswith("linux") and _malloc._glibc()),
    reason="glibc's thresholds exist only where the C library is glibc",
)
def test_import_pins_them_and_freed_arrays_are_reused():
    """Importing layernet pins them; a freed 20 MB array's memory is then reused without
    page faults, where left to glibc the array met fresh pages again (how many depends
    on the kernel's huge pages: a few hundred here). Turned off, nothing is pinned."""
    pinned = run_fresh(LAYERNET_PIN_MALLOC="1")
    left = run_fresh(LAYERNET_PIN_MALLOC="0")
    assert pinned["pinned"] is True and left["pinned"] is False
    assert pinned["faults"] <= max(left["faults"] // 4, 4)
