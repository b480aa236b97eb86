"""The reconnect schedule: 1 s doubling to 30 s, ±20 % jitter, reset by authentication."""

from __future__ import annotations

import random

import anyio
import anyio.lowlevel
import pytest

from relay_anyio.lowlevel import Backoff
from relay_anyio.testing import FakeRelayServer

from .helpers import make_client


class _FixedJitter(random.Random):
    """``uniform`` returns the given factors in turn, and records its bounds."""

    def __init__(self, *factors: float) -> None:
        super().__init__(0)
        self.factors = list(factors)
        self.bounds: list[tuple[float, float]] = []

    def uniform(self, a: float, b: float) -> float:
        self.bounds.append((a, b))
        return self.factors.pop(0) if len(self.factors) > 1 else self.factors[0]


@pytest.mark.parametrize(
    ("jitter", "expected"),
    [
        (1.0, [1, 2, 4, 8, 16, 30, 30]),
        (1.2, [1.2, 2.4, 4.8, 9.6, 19.2, 30, 30]),  # capped at 30, jitter included
        (0.8, [0.8, 1.6, 3.2, 6.4, 12.8, 24, 24]),
    ],
)
def test_delays_double_from_1_to_30_with_20_percent_jitter(
    jitter: float, expected: list[float]
) -> None:
    rng = _FixedJitter(jitter)
    backoff = Backoff(1.0, 30.0, rng)
    assert [backoff.pause() for _ in expected] == pytest.approx(expected)
    assert set(rng.bounds) == {(0.8, 1.2)}
    backoff.reset()
    assert backoff.pause() == pytest.approx(1.0 * jitter)


def test_the_default_jitter_stays_within_20_percent() -> None:
    backoff = Backoff(1.0, 30.0, random.Random(7))
    pauses = [backoff.pause() for _ in range(5)]
    for pause, nominal in zip(pauses, [1, 2, 4, 8, 16], strict=True):
        assert 0.8 * nominal <= pause <= 1.2 * nominal
    assert len(set(pauses)) == 5


@pytest.mark.anyio
async def test_the_reconnect_loop_sleeps_the_schedule_and_resets_after_authentication(
    relay_server: FakeRelayServer,
) -> None:
    """Production timers (1 s, 30 s), with the sleep injected: the loop asks for
    exactly the schedule, and a successful authentication starts it over."""
    client = make_client(relay_server, reconnect_min_delay=1.0, reconnect_max_delay=30.0)
    session = client._session
    session.backoff.rng = _FixedJitter(1.0)
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        await anyio.lowlevel.checkpoint()

    session.sleep = sleep
    async with client:
        for _ in range(6):
            relay_server.drop_next("signalwire.connect")  # six failed attempts
        await relay_server.drop_connection()
        await relay_server.wait_until(lambda: len(relay_server.received("signalwire.connect")) == 8)
        await client.execute("test.ok", {})  # the eighth connect authenticated
        await relay_server.drop_connection()
        await relay_server.wait_until(lambda: len(relay_server.received("signalwire.connect")) == 9)
        await client.execute("test.ok", {})
    assert slept == [1, 2, 4, 8, 16, 30, 30, 1]
