"""What a client sends out on its own: dials (and their builder shortcuts), messages, tasks.

A mixin of ``RelayClient``, apart so that the client class stays readable: these
methods need of the client only its config, session, router and task group.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import anyio
import anyio.abc

from ._call import Call
from ._config import ClientConfig, RestConfig
from ._devices import Device, SipHeader
from ._dials import PendingDial
from ._errors import DialTimeout, RelayError
from ._listeners import EventListener, pick_listener
from ._messaging import Message, MessageListener
from ._payloads import DeviceSpec, SipHeaderItem
from ._router import Router
from ._session import Session
from ._tasks import post_task

__all__ = ["Outbound"]


class Outbound:
    """Dials, messages and tasks (see the module docstring)."""

    config: ClientConfig
    _router: Router
    _session: Session
    _tg: anyio.abc.TaskGroup | None

    # -- outbound calls ------------------------------------------------------------------

    async def dial(
        self,
        devices: Sequence[Sequence[DeviceSpec | Mapping[str, Any]]],
        *,
        tag: str | None = None,
        max_duration: int | None = None,
        timeout: float | None = None,
        dial_timeout: float = 120.0,
        region: str | None = None,
        max_price_per_minute: float | None = None,
        listeners: Mapping[str, EventListener] | None = None,
    ) -> Call:
        """Place a call (outer list: tried in series; inner list: rung in parallel).

        Returns the answered leg. Raises ``RelayError`` if every leg fails, and
        ``DialTimeout`` (a ``TimeoutError`` too) after ``timeout`` seconds
        (default ``dial_timeout``, 120). On a timeout or cancellation the legs still
        ringing are ended and a leg answered late is hung up: no call is left orphaned.

        ``listeners`` (``{EVENT_CALL_STATE: on_state, ...}``) are registered on every
        leg as RELAY announces it, before its first event is delivered, even one that
        overtakes the dial's response: ``created`` and ``ringing`` included, which a
        listener added to the returned call would have missed. Each stays on its leg
        as ``call.on`` would (the losing legs' until they end).
        """
        if self._tg is None:
            raise RuntimeError("dial() needs a connected client: use 'async with client:'")
        tag = tag or str(uuid.uuid4())
        if tag in self._router.dials:
            raise ValueError(f"a dial with tag {tag!r} is already in progress")
        leg_listeners = _checked_listeners(listeners)
        limit = dial_timeout if timeout is None else timeout
        params: dict[str, Any] = {"tag": tag, "devices": [[dict(d) for d in g] for g in devices]}
        if max_duration:
            params["max_duration"] = max_duration
        if region is not None:
            params["region"] = region
        if max_price_per_minute is not None:
            params["max_price_per_minute"] = max_price_per_minute
        dial = PendingDial(tag, leg_listeners)
        self._router.dials[tag] = dial
        succeeded = False
        try:
            with anyio.move_on_after(limit) as scope:
                await self._session.request("calling.dial", params)
                await dial.done.wait()
            if scope.cancelled_caught:
                raise DialTimeout(tag, limit)
            if dial.error is not None:
                raise dial.error
            assert dial.winner is not None
            succeeded = True
            return dial.winner
        finally:
            del self._router.dials[tag]
            if not succeeded:
                await self._router.abandon_dial(dial)

    async def dial_phone(
        self,
        to: str,
        from_: str,
        *,
        ring_timeout: float | None = None,
        tag: str | None = None,
        max_duration: int | None = None,
        timeout: float | None = None,
        dial_timeout: float = 120.0,
        region: str | None = None,
        max_price_per_minute: float | None = None,
        listeners: Mapping[str, EventListener] | None = None,
    ) -> Call:
        """Call the phone number ``to`` with caller id ``from_`` (one of your numbers).

        ``dial([[Device.phone(to, from_, timeout=ring_timeout)]], ...)``: the same frame
        and the same outcomes (the answered ``Call``, ``RelayError``, ``DialTimeout``).
        ``ring_timeout`` is how long the number rings (the device's ``timeout`` on the
        wire); ``timeout`` how long this waits for an answer, as in ``dial``.
        """
        device = Device.phone(to, from_, timeout=ring_timeout)
        return await self.dial(
            [[device]],
            tag=tag,
            max_duration=max_duration,
            timeout=timeout,
            dial_timeout=dial_timeout,
            region=region,
            max_price_per_minute=max_price_per_minute,
            listeners=listeners,
        )

    async def dial_sip(
        self,
        to: str,
        from_: str,
        *,
        from_name: str | None = None,
        headers: Mapping[str, str] | Iterable[SipHeaderItem | SipHeader] | None = None,
        codecs: Iterable[str] | None = None,
        ring_timeout: float | None = None,
        tag: str | None = None,
        max_duration: int | None = None,
        timeout: float | None = None,
        dial_timeout: float = 120.0,
        region: str | None = None,
        max_price_per_minute: float | None = None,
        listeners: Mapping[str, EventListener] | None = None,
    ) -> Call:
        """Call the SIP URI ``to`` from ``from_`` (a SIP URI), with custom ``headers``.

        ``dial([[Device.sip(to, from_, from_name=, headers=, codecs=,
        timeout=ring_timeout)]], ...)``; the rest as in ``dial_phone``.
        """
        device = Device.sip(
            to, from_, from_name=from_name, headers=headers, codecs=codecs, timeout=ring_timeout
        )
        return await self.dial(
            [[device]],
            tag=tag,
            max_duration=max_duration,
            timeout=timeout,
            dial_timeout=dial_timeout,
            region=region,
            max_price_per_minute=max_price_per_minute,
            listeners=listeners,
        )

    # -- messaging ---------------------------------------------------------------------

    async def send_message(
        self,
        *,
        to_number: str,
        from_number: str,
        body: str | None = None,
        media: Sequence[str] | None = None,
        context: str | None = None,
        tags: Sequence[str] | None = None,
        region: str | None = None,
        on_completed: MessageListener | None = None,
    ) -> Message:
        """Send an SMS (``body``) or MMS (``media`` URLs); returns the tracked Message.

        ``await message.wait()`` then gives the final state event. ``context``
        defaults to the session's protocol, as in the official client.
        """
        if not body and not media:
            raise ValueError("At least one of body or media is required")
        if self._tg is None:
            raise RuntimeError("send_message() needs a connected client: use 'async with client:'")
        params: dict[str, Any] = {
            "context": context or self._session.protocol or "default",
            "to_number": to_number,
            "from_number": from_number,
        }
        if body:
            params["body"] = body
        if media:
            params["media"] = list(media)
        if tags:
            params["tags"] = list(tags)
        if region is not None:
            params["region"] = region
        result = await self._session.request("messaging.send", params)
        message_id = result.get("message_id")
        if not isinstance(message_id, str) or not message_id:
            raise RelayError(-1, "messaging.send answered without a message_id", result)
        message = Message(
            self._router.dispatcher,
            {
                **params,
                "message_id": message_id,
                "media": list(media or ()),
                "tags": list(tags or ()),
            },
            state="queued",
            direction="outbound",
            on_completed=on_completed,
        )
        self._router.messages.track(message)
        return message

    # -- tasks -------------------------------------------------------------------------

    async def send_task(
        self, context: str, message: Mapping[str, Any], *, timeout: float | None = None
    ) -> None:
        """Hand ``message`` to whichever consumer listens on ``context`` (see ``send_task``).

        The standalone ``relay_anyio.send_task`` with this client's project, token and
        host (``wss`` -> ``https``; a ``ws://`` test URL -> ``http``, loopback only) and
        TLS trust; it needs no connection, so it also works outside ``async with``.
        ``timeout`` defaults to the client's ``request_timeout``. Never retried (a
        retry could deliver the task twice); a JWT client cannot send tasks
        (``ValueError``).
        """
        rest = RestConfig.for_client(self.config)
        limit = self.config.session.request_timeout if timeout is None else timeout
        await post_task(rest, context, message, limit)


def _checked_listeners(
    listeners: Mapping[str, EventListener] | None,
) -> tuple[tuple[str, EventListener], ...]:
    """A dial's ``listeners`` as pairs, refused before anything is sent if malformed."""
    if not listeners:
        return ()
    pairs = []
    for event_type, listener in listeners.items():
        if not isinstance(event_type, str) or not event_type:
            raise TypeError(f"listeners must be keyed by event type, not {event_type!r}")
        pairs.append((event_type, pick_listener(listener, None)))
    return tuple(pairs)
