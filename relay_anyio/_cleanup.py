"""Cleanup that must reach the server, shared by actions and bridges.

Leaving ``async with await call.record(...)`` stops the recording; leaving ``async
with await call.bridge(...)`` unbridges. Both go through ``stop_quietly``: the stop
request and the wait for its confirming event run in one shielded scope with one
short deadline, so a cancelled handler cannot leave the operation running on the
server, and a server that never answers cannot hold the handler.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import anyio

from ._errors import RelayError
from ._sync import LazyEvent

__all__ = ["CLEANUP_TIMEOUT", "CleanupTarget", "stop_quietly"]

#: How long cleanup (stop on scope exit, stop when a handler returns) may take.
CLEANUP_TIMEOUT = 2.0


class CleanupTarget(Protocol):
    """What ``stop_quietly`` cleans up (an action, a bridge): it names itself in logs."""

    def _log_fields(self) -> dict[str, str]: ...


async def stop_quietly(
    what: CleanupTarget,
    stop: Callable[[], Awaitable[dict[str, Any]]],
    done: LazyEvent,
    log: logging.Logger,
) -> None:
    """``stop()``, then wait for ``done``: shielded, bounded, errors logged (never raised).

    The wait for ``done`` (the terminal event) happens only once the server accepted
    the stop; ``{}`` means the call or the operation is gone and nothing will come.
    Failures and the deadline are logged on ``log`` with ``what``'s ``_log_fields()``.
    """
    extra = what._log_fields()
    with anyio.move_on_after(CLEANUP_TIMEOUT, shield=True) as scope:
        try:
            accepted = await stop()
        except RelayError as exc:
            log.warning("could not stop %r: %s", what, exc, extra=extra)
        else:
            if accepted:
                await done.wait()
    if scope.cancelled_caught:
        log.warning("stopping %r timed out after %g s", what, CLEANUP_TIMEOUT, extra=extra)
