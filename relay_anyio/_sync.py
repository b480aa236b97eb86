"""Synchronisation primitives the hot path needs and anyio does not have."""

from __future__ import annotations

import anyio
import anyio.lowlevel

__all__ = ["LazyEvent"]


class LazyEvent:
    """An :class:`anyio.Event` that only exists once somebody waits on it.

    Every call and every action has a "done" flag, but most are only ever tested,
    never awaited. An ``anyio.Event`` on asyncio is an ``asyncio.Event`` and its
    waiter deque (about 430 bytes), which made these flags the biggest single item of
    a held call's memory (see ``benchmarks/README.md``, W3). Same interface, same
    checkpoint behaviour: ``wait()`` on a set flag still yields once.
    """

    __slots__ = ("_event", "_flag")

    def __init__(self) -> None:
        self._flag = False
        self._event: anyio.Event | None = None

    def is_set(self) -> bool:
        return self._flag

    def set(self) -> None:
        if not self._flag:
            self._flag = True
            if self._event is not None:
                self._event.set()

    async def wait(self, timeout: float | None = None) -> None:
        """Wait until set; ``TimeoutError`` after ``timeout`` seconds (None: no limit).

        Without a timeout no cancel scope is entered: ``fail_after(None)`` still
        costs a scope and a context manager object per wait.
        """
        if self._flag:
            await anyio.lowlevel.checkpoint()
            return
        if self._event is None:
            self._event = anyio.Event()
        if timeout is None:
            await self._event.wait()
        else:
            with anyio.fail_after(timeout):
                await self._event.wait()
