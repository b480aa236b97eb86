"""Keeping one link honest: the keepalive, the drain after ``signalwire.disconnect``,
and the closer that ends a link with its task group.

Each runs as a task in the connection's task group (``Session._serve``) and knows the
session only through the callbacks it is handed, so the rules for when a link is dead
or done live here, apart from the reconnect loop.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import anyio
import anyio.abc

from ._errors import ConnectionLost, RelayError
from ._rpc import NotSent, RpcConnection
from ._telemetry import KEEPALIVE_PREFIX

__all__ = ["close_when_done", "drain", "keep_alive"]

logger = logging.getLogger("relay_anyio.session")


async def close_when_done(conn: RpcConnection) -> None:
    """Close the link as soon as its task group ends, for whatever reason.

    Writes are shielded (a partial frame would corrupt the link), so a reader or a
    request blocked writing to a peer that stopped reading would keep the task group
    open; closing the transport from here ends those writes. The close is polite
    when it can be (a close frame), bounded when it cannot.
    """
    try:
        await anyio.sleep_forever()
    finally:
        with anyio.CancelScope(shield=True):
            await conn.ws.aclose(1000, "")


async def keep_alive(
    conn: RpcConnection,
    interval: float,
    timeout: float,
    *,
    on_rtt: Callable[[float], None],
    on_dead: Callable[[RelayError], None],
) -> None:
    """Ping every ``interval`` s; no reply within ``timeout`` s is a dead link.

    ``on_dead`` is told synchronously (so no request finds the link again), then the
    link is aborted, which ends writes blocked on a peer that stopped reading.
    """
    while True:
        await anyio.sleep(interval)
        sent = time.monotonic()
        with anyio.move_on_after(timeout) as scope:
            try:
                await conn.request("signalwire.ping", {})
            except (RelayError, NotSent):
                return  # the reader has seen the loss, or will
            on_rtt(time.monotonic() - sent)
        if scope.cancelled_caught:
            logger.warning(
                "no reply to signalwire.ping within %g s: the link is dead, reconnecting",
                timeout,
            )
            on_dead(
                ConnectionLost(
                    f"{KEEPALIVE_PREFIX} no reply to signalwire.ping within {timeout:g} s",
                    close_code=1006,
                )
            )
            await conn.ws.abort()
            return


async def drain(conn: RpcConnection, grace: float, task_group: anyio.abc.TaskGroup) -> None:
    """After ``signalwire.disconnect``: let requests in flight finish, then close.

    The caller has already detached the link (new requests wait for the next one)
    and set ``conn.idle``; requests in flight get ``grace`` seconds to be answered
    before the link is closed (unless the server closes it first).
    """
    assert conn.idle is not None
    with anyio.move_on_after(grace):
        await conn.idle.wait()
    conn.lost = conn.lost or ConnectionLost("server asked to disconnect")
    await conn.ws.aclose(1000, "server asked to disconnect")
    task_group.cancel_scope.cancel()
