"""The property tests at their whole count of examples: the soak run reruns, in a pytest of
its own, every module whose tests draw their count from `tests.examples` (the quick run
draws a quarter of it)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from .examples import FULL

ROOT = Path(__file__).resolve().parent.parent
MODULES = (
    "tests/dialects/test_calendar.py",
    "tests/dialects/test_roundtrip.py",
    "tests/dialects/test_xml_safe.py",
)


def drawing_modules() -> list[str]:
    """The test modules that take their count of examples from `tests.examples`."""
    found = (
        path.relative_to(ROOT).as_posix()
        for path in (ROOT / "tests").rglob("test_*.py")
        if re.search(r"^from \.+examples import examples$", path.read_text(), re.M)
    )
    return sorted(found)


def test_the_soak_run_reruns_every_module_that_draws_a_share_of_its_examples() -> None:
    assert drawing_modules() == sorted(MODULES)


@pytest.mark.soak
@pytest.mark.spread
def test_the_property_tests_hold_with_their_whole_count_of_examples() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "0", *MODULES],
        cwd=ROOT,
        env={**os.environ, FULL: "1"},
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert re.search(r"\d+ passed", run.stdout), run.stdout[-500:]
