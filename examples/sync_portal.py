"""Synchronous code driving the client through an anyio blocking portal.

For programs that are not async (a script, a cron job, a Django view, a Celery task):
the client runs on an event loop in a background thread, and every blocking method
below sends one coroutine to it and waits for the answer. The client stays connected
between calls, so a long-lived worker pays the connection once.

    python sync_portal.py +15559876543 "Your order has shipped."
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from contextlib import ExitStack
from types import TracebackType
from typing import Any, Literal, Self, TypeVar

import anyio
from anyio.from_thread import BlockingPortal, start_blocking_portal

from relay_anyio import RelayClient

T = TypeVar("T")
FROM_NUMBER = "+15550000000"


class SyncRelay:
    """A connected RelayClient for synchronous callers (thread-safe: one portal)."""

    def __init__(self, backend: Literal["asyncio", "trio"] = "asyncio", **options: Any) -> None:
        self._backend = backend
        self._options = options
        self._stack = ExitStack()
        self._portal: BlockingPortal | None = None
        self.client: RelayClient | None = None

    def __enter__(self) -> Self:
        with ExitStack() as stack:
            portal = stack.enter_context(start_blocking_portal(self._backend))
            client = RelayClient(**self._options)
            stack.enter_context(portal.wrap_async_context_manager(client))
            self._portal, self.client = portal, client
            self._stack = stack.pop_all()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stack.__exit__(exc_type, exc, tb)  # disconnect, then stop the loop thread
        self._portal = self.client = None

    def run(self, func: Callable[[RelayClient], Awaitable[T]]) -> T:
        """Run ``await func(client)`` on the client's loop and return its result."""
        if self._portal is None or self.client is None:
            raise RuntimeError("use 'with SyncRelay(...) as relay:'")
        client = self.client

        async def call() -> T:
            return await func(client)

        return self._portal.call(call)

    def send_sms(self, to: str, body: str, *, timeout: float = 60) -> str:
        """Send an SMS and wait for its final state (``delivered``, ``failed``...)."""

        async def send(client: RelayClient) -> str:
            message = await client.send_message(to_number=to, from_number=FROM_NUMBER, body=body)
            await message.wait(timeout=timeout)
            return message.state

        return self.run(send)

    def call_and_say(self, to: str, text: str, *, timeout: float = 45) -> str:
        """Call ``to``, speak ``text``, hang up; return the call id."""

        async def call(client: RelayClient) -> str:
            device = {"type": "phone", "params": {"to_number": to, "from_number": FROM_NUMBER}}
            leg = await client.dial([[device]], timeout=timeout)
            try:
                play = await leg.play([{"type": "tts", "text": text}])
                await play.wait(timeout=120)
            finally:
                with anyio.move_on_after(5, shield=True):
                    await leg.hangup()
            return leg.call_id

        return self.run(call)


def main(to: str, text: str, **options: Any) -> None:
    with SyncRelay(contexts=["notifications"], **options) as relay:
        print(f"SMS to {to}: {relay.send_sms(to, text)}")
        print(f"call to {to}: {relay.call_and_say(to, text)} done")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
