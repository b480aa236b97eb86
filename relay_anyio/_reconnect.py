"""When the reconnect loop waits, and when it gives up: two small policy objects.

``Backoff`` spaces the attempts; ``GiveUp`` decides, failure by failure, whether
retrying can still help. They hold the loop's only counters, so each rule is read
(and tested) in one place rather than inside ``Session.run``.
"""

from __future__ import annotations

import logging
import random

import attrs

from ._errors import AuthenticationError, TransportError

__all__ = ["Backoff", "GiveUp"]

logger = logging.getLogger("relay_anyio.session")


@attrs.define
class Backoff:
    """Delays between reconnect attempts: ``base`` doubling up to ``cap``, ±20 % jitter.

    ``reset()`` after a successful authentication starts over at ``base``. ``rng``
    is injectable so that the schedule can be asserted exactly.
    """

    base: float
    cap: float
    rng: random.Random = attrs.field(factory=random.Random)
    _next: float = attrs.field(init=False, default=0.0)

    def __attrs_post_init__(self) -> None:
        self._next = self.base

    def reset(self) -> None:
        """Start over at ``base`` (a connection authenticated)."""
        self._next = self.base

    def pause(self) -> float:
        """The delay before the next attempt; doubles the one after it."""
        pause = min(self._next * self.rng.uniform(0.8, 1.2), self.cap)
        self._next = min(self._next * 2, self.cap)
        return pause


@attrs.define
class GiveUp:
    """The give-up rules: each ``on_*`` method returns normally to retry, or raises.

    - A rejected first connect raises at once: the server's answer is definitive
      and retrying the same credentials cannot help.
    - Once a session was established, rejections are retried ``auth_retries`` times
      in a row (auth services fail transiently), then raised.
    - A host name that does not resolve ``max_unresolved`` times in a row before any
      success raises a fatal ``TransportError`` (a typo, not an outage); DNS failures
      have this limit of their own.
    - A fatal ``TransportError`` (say, a certificate that does not verify) raises at
      once. Everything else is retried forever.
    """

    auth_retries: int
    max_unresolved: int
    ever_authenticated: bool = False
    rejections: int = 0
    unresolved: int = 0

    def on_ready(self) -> None:
        """A connection authenticated: every count starts over."""
        self.ever_authenticated = True
        self.rejections = self.unresolved = 0

    def on_rejected(self, exc: AuthenticationError) -> None:
        """``signalwire.connect`` was refused."""
        self.unresolved = 0
        self.rejections += 1
        if not self.ever_authenticated:
            logger.error("authentication rejected: %s", exc.message)
            raise exc
        if self.rejections > self.auth_retries:
            logger.error(
                "reconnect rejected %d times in a row, giving up: %s",
                self.rejections,
                exc.message,
            )
            raise exc
        logger.warning("reconnect rejected (will retry): %s", exc.message)

    def on_transport_error(self, exc: TransportError) -> None:
        """The link could not be opened."""
        if exc.fatal:
            logger.error("cannot connect to RELAY: %s", exc.message)
            raise exc
        self.unresolved = self.unresolved + 1 if exc.unresolved else 0
        if self.unresolved >= self.max_unresolved and not self.ever_authenticated:
            logger.error(
                "host name did not resolve %d times in a row, giving up: %s",
                self.unresolved,
                exc.message,
            )
            raise TransportError(exc.message, fatal=True, unresolved=True) from None
        logger.warning("connection failed: %s", exc.message)

    def on_lost(self, message: str) -> None:
        """An open link was lost (or never answered): always retried."""
        self.unresolved = 0
        logger.warning("connection lost: %s", message)
