"""How many examples a property test draws: a quarter of its count in the quick run,
the whole count in the soak run (`test_examples_soak.py` reruns those modules so).

The count a test names is the one it is meant to hold at; the quick run draws a share of
it (never fewer than 10), so that the registry-driven grids, which grow with every dialect
(the translation grid with the square of their formats), stay cheap.
"""

from __future__ import annotations

import os

from hypothesis import settings

# Set by the soak run's rerun of the modules that draw their examples here.
FULL = "GATEWAY_TEST_FULL_EXAMPLES"


def examples(count: int) -> settings:
    """`count` examples under the soak run, a quarter of them (at least 10) otherwise."""
    drawn = count if os.environ.get(FULL) == "1" else max(count // 4, 10)
    return settings(max_examples=drawn, deadline=None)
