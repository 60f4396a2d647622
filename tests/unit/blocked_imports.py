"""Run code in a fresh interpreter in which some packages cannot be imported."""
from __future__ import annotations

import subprocess
import sys


def run_without(modules: tuple[str, ...], code: str, timeout: float = 120) -> str:
    """The stdout of `code`, run by a new Python in which importing any of `modules` fails
    (as on a machine that lacks them); a failing run fails the test with its stderr."""
    blocked = f"import sys\nfor m in {tuple(modules)!r}: sys.modules[m] = None   # any import of them now fails\n"
    out = subprocess.run([sys.executable, "-c", blocked + code], capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()
