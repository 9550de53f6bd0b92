"""The PostgreSQL server crashing under gateways that share it: nothing acknowledged is
lost, and the gateways answer again once it is back, without being restarted.

Two crashes under two gateways take some 15 s (a server of the module's own, two
gateways, crash recovery), so this runs in the soak run (`python -m pytest -m soak`);
`python -m benchmarks.soak.crash --server-kills` runs twenty crashes at one and two
workers (figures in docs/performance.md).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from benchmarks.soak import crash

from ..postgres import Cluster

pytestmark = pytest.mark.soak


@pytest.fixture(scope="module")
def server() -> Iterator[Cluster]:
    """A server of the module's own, since the test kills it. Commits wait for their WAL
    to reach the operating system (a killed server loses only what it had not written);
    fsync stays off, as for the session's server: the machine itself does not crash."""
    cluster = Cluster(settings={"synchronous_commit": "on"}).start()
    try:
        yield cluster
    finally:
        cluster.stop()


async def test_server_crashes_lose_no_acknowledged_payment_and_gateways_recover(
    server: Cluster, tmp_path: Path
) -> None:
    figures = await crash.server_kills(
        server.url(server.create()), server.crash, server.restart,
        cycles=2, writers=6, gateways=2, workers=1,
        window=(0.1, 0.3), down=(0.0, 0.2), workdir=tmp_path,
    )  # fmt: skip
    assert figures.retries > 0, figures  # the writers did meet the server down
    # Each gateway acknowledged a payment after each restart (else `unexpected`).
    assert figures.acknowledged >= 2 * 2, figures
    assert (figures.lost, figures.duplicated, figures.unacknowledged) == (0, 0, 0), figures
    assert (figures.wrong_due, figures.unexpected) == (0, 0), figures
