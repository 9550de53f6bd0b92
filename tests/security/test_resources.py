"""The catalogue server alive, small and quiet: now, and again once its last test ran.

Peak memory is the catalogue server's VmHWM (the kernel's high-water mark of its
resident set) against its RSS just after start-up: the bombs, the megabyte documents
and the fuzz must not have grown it past MAX_RSS_GROWTH_MB. The same check runs when
the session's catalogue server stops (tests/security/conftest.py), after whatever
tests ran on it in whatever order, so this test need not run last.
"""

from __future__ import annotations

from .conftest import Catalogue, assert_alive_small_and_quiet


def test_the_catalogue_server_is_alive_small_and_quiet(catalogue: Catalogue) -> None:
    assert_alive_small_and_quiet(catalogue)
