"""The applications' allocator settings (gateway/app/memory.py): applied on glibc, in a
process of their own (they are process-wide), never by the library itself."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
                    reason="the settings are glibc's")  # fmt: skip
def test_tune_malloc_is_taken_by_glibc_and_can_be_applied_twice() -> None:
    code = ("from gateway.app.memory import tune_malloc; "
            "print(tune_malloc(), tune_malloc())")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=True)  # fmt: skip
    assert out.stdout.split() == ["True", "True"]


def test_importing_the_library_changes_no_allocator_setting() -> None:
    code = "import sys, gateway; print('gateway.app.memory' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=True)  # fmt: skip
    assert out.stdout.split() == ["False"]
