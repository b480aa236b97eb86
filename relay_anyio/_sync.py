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

        Without a timeout no cancel scope is entered: ``fail_after(None)`` still
        costs a scope and a context manager object per wait.
        """
        if self._flag:
            await anyio.lowlevel.checkpoint()
        elif timeout is None:
            await self._park()
        else:
            with anyio.fail_after(timeout):
                await self._park()

    async def _park(self) -> None:
        if current_async_library() != "asyncio":
            if self._event is None:
                self._event = anyio.Event()
            await self._event.wait()
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self._futures is None:
            self._futures = []
        self._futures.append(future)
        try:
            await future
        finally:
            self._futures.remove(future)
