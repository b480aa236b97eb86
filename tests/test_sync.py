"""LazyEvent: the done flag of calls, actions, messages and requests."""

from __future__ import annotations

import anyio
import anyio.lowlevel
import pytest

from relay_anyio._sync import LazyEvent

pytestmark = pytest.mark.anyio


async def test_waiters_wake_when_set_and_a_set_flag_returns_at_once() -> None:
    flag = LazyEvent()
    woken: list[int] = []

    async def wait(n: int) -> None:
        await flag.wait()
        woken.append(n)

    async with anyio.create_task_group() as tg:
        for n in range(3):
            tg.start_soon(wait, n)
        await anyio.wait_all_tasks_blocked()
        assert woken == [] and not flag.is_set()
        flag.set()
        flag.set()  # idempotent
    assert sorted(woken) == [0, 1, 2]
    with anyio.fail_after(1):
        await flag.wait()
    assert flag.is_set()


async def test_cancelling_one_waiter_leaves_the_others_waiting() -> None:
    flag = LazyEvent()
    woken: list[str] = []

    async def wait(name: str) -> None:
        await flag.wait()
        woken.append(name)

    async with anyio.create_task_group() as tg:
        async with anyio.create_task_group() as doomed:
            doomed.start_soon(wait, "cancelled")
            tg.start_soon(wait, "kept")
            await anyio.wait_all_tasks_blocked()
            doomed.cancel_scope.cancel()
        await anyio.wait_all_tasks_blocked()
        flag.set()
    assert woken == ["kept"]


async def test_timeout_raises_and_a_later_wait_still_works() -> None:
    flag = LazyEvent()
    with pytest.raises(TimeoutError):
        await flag.wait(0.01)
    async with anyio.create_task_group() as tg:
        tg.start_soon(flag.wait, 1.0)
        await anyio.wait_all_tasks_blocked()
        flag.set()


async def test_a_wait_on_a_set_flag_is_a_checkpoint() -> None:
    flag = LazyEvent()
    flag.set()
    with anyio.CancelScope() as scope:
        scope.cancel()
        await flag.wait()
        pytest.fail("a set flag's wait did not check for cancellation")
    assert scope.cancelled_caught


async def test_an_outer_cancel_of_a_timed_wait_is_a_cancel_not_a_timeout() -> None:
    """The wait's own deadline is its scope's; a cancel from outside passes through."""
    flag = LazyEvent()
    with anyio.CancelScope() as outer:

        async def cancel_soon() -> None:
            await anyio.wait_all_tasks_blocked()
            outer.cancel()

        async with anyio.create_task_group() as tg:
            tg.start_soon(cancel_soon)
            await flag.wait(30.0)  # neither TimeoutError nor a return
        pytest.fail("the outer cancel did not reach the waiter")
    assert outer.cancelled_caught
    assert not flag.is_set()


async def test_a_timed_wait_returns_when_set_before_its_deadline() -> None:
    flag = LazyEvent()
    async with anyio.create_task_group() as tg:

        async def set_soon() -> None:
            await anyio.wait_all_tasks_blocked()
            flag.set()

        tg.start_soon(set_soon)
        await flag.wait(30.0)
    assert flag.is_set()
