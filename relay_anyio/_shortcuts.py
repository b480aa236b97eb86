"""Bridge a call to one phone number or SIP endpoint without writing the device list.

``call.bridge_phone("+15559876543", "+15551234567")`` is ``call.connect`` with
``[[Device.phone(...)]]``: one device in one group, the frame a hand-written
``connect`` would send, nothing else.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ._commands import ControlCommands
from ._devices import Device, SipHeader
from ._payloads import MediaItem, SipHeaderItem

__all__ = ["CallShortcuts"]


class CallShortcuts(ControlCommands):
    """One-device bridges (a mixin of ``Call``)."""

    async def bridge_phone(
        self,
        to: str,
        from_: str | None = None,
        *,
        ring_timeout: float | None = None,
        ringback: Sequence[MediaItem | Mapping[str, Any]] | None = None,
        tag: str | None = None,
        max_duration: int | None = None,
        max_price_per_minute: float | None = None,
        status_url: str | None = None,
    ) -> dict[str, Any]:
        """Bridge this call to the phone number ``to`` (caller id ``from_``, if given).

        ``ring_timeout`` is the device's ``timeout`` (seconds it rings); the rest are
        ``connect``'s options. Returns ``connect``'s result; progress arrives as
        ``calling.call.connect`` events, exactly as after ``connect``.
        """
        device = Device.phone(to, from_, timeout=ring_timeout)
        return await self.connect(
            [[device]],
            ringback=ringback,
            tag=tag,
            max_duration=max_duration,
            max_price_per_minute=max_price_per_minute,
            status_url=status_url,
        )

    async def bridge_sip(
        self,
        to: str,
        from_: str | None = None,
        *,
        from_name: str | None = None,
        headers: Mapping[str, str] | Iterable[SipHeaderItem | SipHeader] | None = None,
        codecs: Iterable[str] | None = None,
        ring_timeout: float | None = None,
        ringback: Sequence[MediaItem | Mapping[str, Any]] | None = None,
        tag: str | None = None,
        max_duration: int | None = None,
        max_price_per_minute: float | None = None,
        status_url: str | None = None,
    ) -> dict[str, Any]:
        """Bridge this call to the SIP URI ``to``, with custom ``headers`` if given.

        The device is ``Device.sip(to, from_, from_name=, headers=, codecs=,
        timeout=ring_timeout)``; the rest are ``connect``'s options, as in
        ``bridge_phone``.
        """
        device = Device.sip(
            to, from_, from_name=from_name, headers=headers, codecs=codecs, timeout=ring_timeout
        )
        return await self.connect(
            [[device]],
            ringback=ringback,
            tag=tag,
            max_duration=max_duration,
            max_price_per_minute=max_price_per_minute,
            status_url=status_url,
        )
