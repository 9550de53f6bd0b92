"""Which `--workers` worker takes a new connection: the shared table and the turns it gives."""

from __future__ import annotations

import os

import pytest

from gateway.processes.balance import Table, Turns


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def table_of(*held: int | None) -> Table:
    """A table whose slot i holds held[i] open connections (None: not accepting)."""
    table = Table(len(held))
    for slot, count in enumerate(held):
        if count is not None:
            table.join(slot, 1000 + slot)
            for _ in range(count):
                table.opened(slot)
    return table


@pytest.mark.parametrize(
    ("held", "slot", "ahead"),
    [
        ((0, 0), 0, False),  # a tie: both take
        ((1, 0), 0, True),
        ((1, 0), 1, False),
        ((8, 7), 0, True),  # one ahead already: the other takes the next
        ((7, 8), 0, False),
        ((3, 5, 2), 0, True),
        ((2, 5, 2), 0, False),
        ((5, None), 0, False),  # a worker not accepting (starting, draining) does not count
        ((0, None, 9), 2, True),
    ],
)
def test_a_worker_is_ahead_while_another_accepting_worker_holds_fewer_connections(
    held: tuple[int | None, ...], slot: int, ahead: bool
) -> None:
    assert table_of(*held).ahead(slot) is ahead


def test_connections_count_from_accept_to_close_and_only_while_accepting() -> None:
    table = table_of(2, 0)
    table.closed(0)
    table.opened(1)
    assert table.accepting() == {1000: 1, 1001: 1}
    table.leave(1)  # draining: still holds one, no longer counts for turns
    assert table.held(1) == 1 and table.accepting() == {1000: 1}
    assert not table.ahead(0)


def test_a_dead_workers_slot_is_cleared_and_its_successor_starts_from_nothing() -> None:
    table = table_of(3, 5)
    table.clear(1)
    assert table.accepting() == {1000: 3} and table.held(1) == 0
    table.join(1, 2001)
    assert table.accepting() == {1000: 3, 2001: 0}
    assert table.ahead(0) and not table.ahead(1)


def test_workers_forked_after_the_table_is_made_write_to_the_same_cells() -> None:
    table = table_of(0, None)
    child = os.fork()
    if child == 0:  # the child: join slot 1 and open three connections
        table.join(1, os.getpid())
        for _ in range(3):
            table.opened(1)
        os._exit(0)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert table.accepting() == {1000: 0, child: 3}
    assert table.ahead(1)


def test_a_worker_not_ahead_takes_every_connection_at_once() -> None:
    clock = Clock()
    turns = Turns(table_of(4, 4), 0, wait=2.0, clock=clock)
    assert all(turns.mine() for _ in range(3))


def test_a_worker_ahead_leaves_a_connection_to_the_others_for_the_wait_then_takes_it() -> None:
    clock = Clock()
    turns = Turns(table_of(2, 1), 0, wait=2.0, clock=clock)
    assert not turns.mine()
    clock.now += 1.5
    assert not turns.mine()
    clock.now += 0.5
    assert turns.mine()  # nobody else took it: a stuck worker strands no client
    assert not turns.mine()  # the next pending connection waits afresh
    clock.now += 2.0
    assert turns.mine()


def test_the_wait_starts_again_once_another_worker_took_the_connection() -> None:
    clock = Clock()
    turns = Turns(table_of(2, 1), 0, wait=2.0, clock=clock)
    assert not turns.mine()
    clock.now += 1.5
    turns.taken()
    assert not turns.mine()
    clock.now += 1.5
    assert not turns.mine()


def test_once_the_others_catch_up_a_worker_takes_again_without_waiting() -> None:
    clock = Clock()
    table = table_of(2, 1)
    turns = Turns(table, 0, wait=2.0, clock=clock)
    assert not turns.mine()
    table.opened(1)
    assert turns.mine()
    table.opened(0)
    assert not turns.mine()  # ahead again: a fresh wait, not what was left of the last
    clock.now += 1.5
    assert not turns.mine()


def test_no_wait_means_whichever_worker_wakes_first_takes_the_connection() -> None:
    turns = Turns(table_of(9, 0), 0, wait=0, clock=Clock())
    assert turns.mine()
