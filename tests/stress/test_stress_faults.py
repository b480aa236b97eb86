"""200 live calls doing play / collect / record while the link drops 25 times.

``python benchmarks/soak.py`` runs the same scenario with 1000 calls and 100 drops.
"""

from __future__ import annotations

import pytest

from .scenarios import run_fault_scenario

pytestmark = pytest.mark.anyio

CALLS = 200
DROPS = 25
#: Each call gets at least: answered, play playing/finished, the collect's prompt
#: playing/finished, the collect result, recording/finished, ending, ended.
MIN_EVENTS_PER_CALL = 10


# CPU-bound (8-15 s idle, 35 s seen on a loaded machine): the limits only catch a hang.
@pytest.mark.timeout(180)
async def test_200_calls_lose_nothing_through_25_random_drops() -> None:
    report = await run_fault_scenario(CALLS, DROPS, seed=20240601, timeout=150)
    assert report.errors == []
    # The faults happened: every requested drop, each followed by a resume.
    assert report.drops == DROPS
    assert report.connections == DROPS + 1
    assert report.requests_lost > 0  # some requests were in flight at a drop
    # Every call ran to its end, on both sides.
    assert report.handlers_started == CALLS
    assert report.handlers_completed == CALLS
    assert report.ended_on_server == CALLS
    assert report.ended_on_client == CALLS
    assert report.active_calls_after == 0
    # Every event the server sent reached the call's listeners once, in order.
    assert report.events_sent >= CALLS * MIN_EVENTS_PER_CALL
    assert report.events_delivered == report.events_sent
    assert report.duplicates == 0
    assert report.missing == 0
    assert report.calls_out_of_order == 0
    assert report.unacked_after == 0
    # Every action completed by its own terminal event (none by "call ended").
    assert report.actions_started == 3 * CALLS
    assert report.actions_completed == 3 * CALLS
