"""Synchronisation primitives the hot path needs and anyio does not have."""

from __future__ import annotations

import asyncio

import anyio
import anyio.lowlevel

__all__ = ["LazyEvent", "current_async_library"]

try:
    from sniffio import current_async_library
except ImportError:  # pragma: no cover - trio needs sniffio, so this is asyncio

    def current_async_library() -> str:
        return "asyncio"


class LazyEvent:
    """An event whose waiting machinery only exists once somebody waits.

    Every call, action, message and request has a "done" flag, and many are only
    ever tested, never awaited. An ``anyio.Event`` on asyncio is an ``asyncio.Event``
    and its waiter deque (about 430 bytes, plus 48 for the wrapper), which made these
    flags the biggest single item of a held call's memory (``benchmarks/README.md``,
    W3). Here a flag costs 56 bytes; on asyncio a waiter parks on a bare future (one
    per waiter, as ``asyncio.Event`` does, so that cancelling one waiter cannot
    cancel the others), elsewhere on an ``anyio.Event`` made on first wait.
    ``wait()`` on a set flag still yields once, like ``anyio.Event.wait()``.
    """

    __slots__ = ("_event", "_flag", "_futures")

    def __init__(self) -> None:
        self._flag = False
        self._futures: list[asyncio.Future[None]] | None = None
        self._event: anyio.Event | None = None

    def is_set(self) -> bool:
        return self._flag

    def set(self) -> None:
        if self._flag:
            return
        self._flag = True
        if self._futures:
            for future in self._futures:
                if not future.done():
                    future.set_result(None)
        if self._event is not None:
            self._event.set()

    async def wait(self, timeout: float | None = None) -> None:
        """Wait until set; ``TimeoutError`` after ``timeout`` seconds (None: no limit).

        No cancel scope is entered without a timeout (``fail_after(None)`` still costs
        a scope and a context manager object), nor on asyncio with one: a loop timer
        wakes the waiter instead, a third of a scope's cost, and this is every
        request's wait for its response. On trio, one native cancel scope.
        """
        if self._flag:
            await anyio.lowlevel.checkpoint()
            return
        library = current_async_library()
        if library == "asyncio":
            await self._park_on_future(timeout)
        elif timeout is None:
            await self._park_on_event()
        elif library == "trio":
            # trio's own scope: anyio's fail_after wraps one in a second scope object
            # and a context manager, most of the cost of a request's wait on trio.
            import trio

            with trio.CancelScope(deadline=trio.current_time() + timeout) as scope:
                await self._park_on_event()
            if scope.cancelled_caught and not self._flag:
                raise TimeoutError
        else:
            with anyio.fail_after(timeout):
                await self._park_on_event()

    async def _park_on_event(self) -> None:
        if self._event is None:
            self._event = anyio.Event()
        await self._event.wait()

    async def _park_on_future(self, timeout: float | None) -> None:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        timer = None if timeout is None else loop.call_later(timeout, _wake, future)
        if self._futures is None:
            self._futures = []
        self._futures.append(future)
        try:
            await future
        finally:
            self._futures.remove(future)
            if timer is not None:
                timer.cancel()
        if not self._flag:
            raise TimeoutError


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
