"""Action handles: one running operation (play, record, collect...) on a call.

An action is resolved by the reader, synchronously, when its terminal event arrives
(routed by ``control_id``), or when its call ends, so ``wait()`` never hangs on a dead
call. ``wait(timeout)`` is a cancel scope around an ``anyio.Event``: a timeout
(or any cancellation) ends that wait only, and the action stays usable.

``async with await call.record(...) as rec:`` scopes an action: leaving the block for
any reason stops it, in a shielded scope with a short deadline, so a cancelled handler
cannot leave a recording running on the server.

``action.on(fn)`` and ``async for event in action`` (``_streams.ActionEvents``) see
every event of the action; the reader hands them over in ``_handle``.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, ClassVar, Protocol

from ._cleanup import stop_quietly
from ._constants import (
    EVENT_CALL_AI,
    EVENT_CALL_COLLECT,
    EVENT_CALL_FAX,
    EVENT_CALL_PAY,
    EVENT_CALL_PLAY,
    EVENT_CALL_RECORD,
    EVENT_CALL_STREAM,
    EVENT_CALL_TAP,
    EVENT_CALL_TRANSCRIBE,
)
from ._errors import RelayError
from ._events import RelayEvent, make_event
from ._streams import ActionEvents, StreamHost
from ._sync import LazyEvent

__all__ = [
    "AIAction",
    "Action",
    "ActionHost",
    "CollectAction",
    "CompletedCallback",
    "FaxAction",
    "PayAction",
    "PlayAction",
    "RecordAction",
    "StandaloneCollectAction",
    "StreamAction",
    "TapAction",
    "TranscribeAction",
]

logger = logging.getLogger("relay_anyio.actions")

CompletedCallback = Callable[[RelayEvent], Awaitable[object] | object]

#: ``state`` of the synthetic result an action gets when its call ends first.
CALL_ENDED_STATE = "call_ended"


class ActionHost(StreamHost, Protocol):
    """What an action needs of the call it runs on (a ``Call``)."""

    call_id: str
    node_id: str
    state: str
    _ended: LazyEvent

    async def _command(
        self, method: str, params: dict[str, Any] | None = None
    ) -> dict[str, Any]: ...

    def _dispatch(
        self, callbacks: tuple[Callable[[RelayEvent], Any], ...], event: RelayEvent
    ) -> None: ...


class Action(ActionEvents):
    """Handle on an operation started on a call; see the module docstring.

    ``result`` is the terminal event once done (``None`` before). When the call ended
    before the server reported an outcome, ``result`` is a synthetic event of the
    action's kind whose ``params`` say so: ``{"state": "call_ended", "end_reason":
    ..., "call_id": ..., "control_id": ...}``, so code written like the guide
    (``result.params.get(...)``) keeps running.

    ``async for event in action:`` yields every event of the action, the terminal one
    last (see ``EventStream``); ``on(listener)`` calls a listener with each.
    """

    #: Event type of this kind of action (used for synthetic results).
    event_type: ClassVar[str] = ""
    #: ``params.state`` values that end this kind of action.
    terminal_states: ClassVar[frozenset[str]] = frozenset({"finished", "error"})
    #: Method prefix of the sub-commands (``<prefix>.stop`` ...); empty: no stop.
    method_prefix: ClassVar[str] = ""
    #: The terminal event carries what the user came for and may arrive after the
    #: call's ``ended`` (reference §12.7): the call waits a short grace for it.
    result_outlives_call: ClassVar[bool] = False
    #: Told when the action settles (set by active telemetry; see ``_telemetry``).
    _on_settled: Callable[[Action, RelayError | None], object] | None = None
    call: ActionHost

    def __init__(
        self,
        call: ActionHost,
        control_id: str,
        on_completed: CompletedCallback | None = None,
    ) -> None:
        #: The call this action runs on.
        self.call = call
        self.control_id = control_id
        self.result: RelayEvent | None = None
        #: The immediate response of the starting command (may carry e.g. ``url``).
        self.start_result: dict[str, Any] = {}
        self._done = LazyEvent()
        self._on_completed = on_completed
        #: Set when the action can never report an outcome (its session was replaced).
        self._error: RelayError | None = None

    def __repr__(self) -> str:
        state = "done" if self.is_done else "running"
        return f"<{type(self).__name__} {self.control_id} on {self.call.call_id} {state}>"

    def _log_fields(self) -> dict[str, str]:
        """The structured fields of a log line about this action (``extra=``)."""
        return {"call_id": self.call.call_id, "control_id": self.control_id}

    @property
    def is_done(self) -> bool:
        return self._done.is_set()

    @property
    def completed(self) -> bool:
        """Alias of ``is_done`` (the official client's attribute)."""
        return self._done.is_set()

    @property
    def call_ended(self) -> bool:
        """True when the action finished because its call ended, not by its own event."""
        return self.result is not None and self.result.raw_params.get("state") == CALL_ENDED_STATE

    # -- completion (called by the call, from the reader) ------------------------------

    def _is_terminal(self, event: RelayEvent) -> bool:
        return event.raw_params.get("state") in self.terminal_states

    def _handle(self, event: RelayEvent) -> bool:
        """Look at an event carrying our control_id; return True once done.

        The action's own listeners and streams (none, mostly) get every event, the
        terminal one after the action is resolved by it (``_resolve``).
        """
        if self._done.is_set():
            return True
        if self._is_terminal(event):
            self._resolve(event)
            return True
        if self._listeners:
            self.call._dispatch(self._listeners, event)
        return False

    def _settle(
        self, event: RelayEvent, error: RelayError | None = None
    ) -> CompletedCallback | None:
        """Finish with ``event`` (once); return the ``on_completed`` to run, if any.

        With ``error`` (the session is gone, the outcome unknown), ``wait()`` raises
        it and no callback runs.
        """
        if self._done.is_set():
            return None
        self.result = event
        self._error = error
        self._done.set()
        if self._on_settled is not None:
            self._on_settled(self, error)
        return self._on_completed if error is None else None

    def _resolve(self, event: RelayEvent) -> None:
        if self._done.is_set():
            return
        callback = self._settle(event)
        listeners = self._listeners
        if callback is not None:
            listeners = (*listeners, callback) if listeners else (callback,)
        if listeners:
            self.call._dispatch(listeners, event)

    def _finish_call_ended(self, end_reason: str) -> None:
        self._resolve(self._synthetic_result(end_reason))

    def _synthetic_result(self, end_reason: str) -> RelayEvent:
        params = {
            "call_id": self.call.call_id,
            "node_id": self.call.node_id,
            "control_id": self.control_id,
            "state": CALL_ENDED_STATE,
            "end_reason": end_reason,
        }
        return make_event(self.event_type, params)

    async def _complete_now(self, end_reason: str) -> None:
        """Finish at once (the call ended or is gone) and run ``on_completed`` here.

        Called by the task that started the action, so the callback runs before the
        start returns, even when the call has no listener task left to run it on.
        """
        event = self._synthetic_result(end_reason)
        callback = self._settle(event)
        if callback is None:
            return
        try:
            outcome = callback(event)
            if inspect.isawaitable(outcome):
                await outcome
        except Exception:
            logger.exception("on_completed callback of %r failed", self, extra=self._log_fields())

    def _fail(self, error: RelayError) -> None:
        """End every wait with ``error``: the session the action ran in is gone.

        Unlike a call that ended, nothing is known about the outcome (the server may
        still be running the operation in the old session), so ``wait()`` raises
        instead of returning a made-up result, and ``on_completed`` does not fire.
        """
        self._settle(self._synthetic_result("session_lost"), error)

    # -- user API ----------------------------------------------------------------------

    async def wait(self, timeout: float | None = None) -> RelayEvent:
        """Wait for the terminal event and return it.

        Raises ``TimeoutError`` after ``timeout`` seconds; the action is not affected
        and a later ``wait()`` still works. Raises ``ConnectionLost`` if the
        session the action ran in was replaced by a fresh one (its outcome is lost).
        """
        if not self._done.is_set():
            await self._done.wait(timeout)
        if self._error is not None:
            raise self._error
        assert self.result is not None
        return self.result

    async def _control(self, op: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        if not self.method_prefix:
            raise TypeError(f"{type(self).__name__} has no {op}()")
        if self.call._ended.is_set():
            # Nothing runs on an ended call: RELAY would answer 410, a no-op anyway.
            return {}
        params = {"control_id": self.control_id}
        if extra:
            params.update(extra)
        return await self.call._command(f"{self.method_prefix}.{op}", params)

    async def _stop_quietly(self) -> None:
        """Stop for cleanup: shielded, bounded, errors logged (never raised).

        Once the server accepted the stop, this also waits (within the same
        deadline) for the terminal event, so the action leaves with its real result
        (a recording's URL...) and its ``on_completed`` is queued while the call's
        listener task still runs.
        """
        if self._done.is_set() or not self.method_prefix or self.call.state == "ended":
            return
        await stop_quietly(self, functools.partial(self._control, "stop"), self._done, logger)

    async def __aenter__(self) -> Action:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._stop_quietly()


class _Stoppable(Action):
    """An action the server can be asked to stop."""

    async def stop(self) -> dict[str, Any]:
        """Ask the server to stop; the action completes when its terminal event arrives."""
        return await self._control("stop")


class PlayAction(_Stoppable):
    """A running ``calling.play``: pause, resume, volume, stop."""

    event_type: ClassVar[str] = EVENT_CALL_PLAY
    method_prefix: ClassVar[str] = "calling.play"

    async def pause(self) -> dict[str, Any]:
        """Pause playback; ``resume()`` goes on where it stopped."""
        return await self._control("pause")

    async def resume(self) -> dict[str, Any]:
        """Resume a paused playback."""
        return await self._control("resume")

    async def volume(self, volume: float) -> dict[str, Any]:
        """Set the playback gain in dB (-40.0 to 40.0)."""
        return await self._control("volume", {"volume": volume})


class RecordAction(_Stoppable):
    """A recording; ``url`` is where it can be fetched once finished.

    A recording running when the call ends finishes with its own terminal event if
    that arrives within the client's ``late_result_grace`` of the ``ended`` state
    (servers may send it after ``ended``), else with the synthetic "call ended"
    result (``url`` then falls back to the start response's).
    """

    event_type: ClassVar[str] = EVENT_CALL_RECORD
    result_outlives_call: ClassVar[bool] = True
    terminal_states: ClassVar[frozenset[str]] = frozenset({"finished", "no_input", "error"})
    method_prefix: ClassVar[str] = "calling.record"

    async def pause(self, behavior: str | None = None) -> dict[str, Any]:
        """Pause; ``behavior`` is ``"skip"`` (drop the gap) or ``"silence"``."""
        return await self._control("pause", {"behavior": behavior} if behavior else None)

    async def resume(self) -> dict[str, Any]:
        """Resume a paused recording."""
        return await self._control("resume")

    @property
    def url(self) -> str:
        """The recording URL: from the terminal event, else from the start response."""
        if self.result is not None:
            url = getattr(self.result, "url", "")
            if url:
                return str(url)
        value = self.start_result.get("url")
        return value if isinstance(value, str) else ""


_COLLECT_TERMINAL_STATES = frozenset({"finished", "error", "no_input", "no_match"})
_INTERIM_RESULT_TYPES = frozenset({"start_of_input", "partial"})


class _CollectBase(_Stoppable):
    """What every collect shares: the result, and starting input timers."""

    event_type: ClassVar[str] = EVENT_CALL_COLLECT
    terminal_states: ClassVar[frozenset[str]] = _COLLECT_TERMINAL_STATES

    def _is_terminal(self, event: RelayEvent) -> bool:
        # Only collect events end a collect (the prompt's play events do not), and
        # only a final one: partial and start-of-input results arrive as events.
        if event.event_type != EVENT_CALL_COLLECT:
            return False
        params = event.raw_params
        final = params.get("final")
        if final is False:
            return False
        result = params.get("result")
        if isinstance(result, dict) and result:
            return result.get("type") not in _INTERIM_RESULT_TYPES
        return params.get("state") in self.terminal_states

    async def start_input_timers(self) -> dict[str, Any]:
        """Start the initial timeout now (for collects started with timers off)."""
        return await self.call._command(
            "calling.collect.start_input_timers", {"control_id": self.control_id}
        )


class CollectAction(_CollectBase):
    """A ``play_and_collect``: one control_id for the prompt and the input."""

    method_prefix: ClassVar[str] = "calling.play_and_collect"
    #: Whether RELAY has ``calling.play_and_collect.pause``/``.resume``. No server
    #: schema lists them (reference §11.2, §15.18: the official client's inherited
    #: ``pause()`` sends a method RELAY does not know), so ``pause()``/``resume()``
    #: refuse at once, sending nothing. Flip this if RELAY gains them.
    pause_supported: ClassVar[bool] = False

    async def volume(self, volume: float) -> dict[str, Any]:
        """Set the prompt's gain in dB (-40.0 to 40.0)."""
        return await self._control("volume", {"volume": volume})

    async def pause(self) -> dict[str, Any]:
        """Pause the prompt: not a RELAY method (see ``pause_supported``).

        Raises ``NotImplementedError`` without sending anything. For a pausable
        prompt, ``play()`` it and ``collect()`` after it.
        """
        return await self._pause_or_resume("pause")

    async def resume(self) -> dict[str, Any]:
        """Resume the prompt: not a RELAY method, like ``pause()``."""
        return await self._pause_or_resume("resume")

    async def _pause_or_resume(self, op: str) -> dict[str, Any]:
        if not self.pause_supported:
            raise NotImplementedError(
                f"RELAY has no {self.method_prefix}.{op} (it is in no server schema); "
                "to pause a prompt, play() it and collect() after it"
            )
        return await self._control(op)


class StandaloneCollectAction(_CollectBase):
    """A ``collect`` without a prompt."""

    method_prefix: ClassVar[str] = "calling.collect"


class FaxAction(_Stoppable):
    """``send_fax`` / ``receive_fax``; ends on a top-level state or a fax ``finished``."""

    event_type: ClassVar[str] = EVENT_CALL_FAX

    def __init__(
        self,
        call: ActionHost,
        control_id: str,
        on_completed: CompletedCallback | None = None,
        *,
        method_prefix: str = "calling.send_fax",
    ) -> None:
        super().__init__(call, control_id, on_completed)
        self.method_prefix = method_prefix  # type: ignore[misc]

    def _is_terminal(self, event: RelayEvent) -> bool:
        if super()._is_terminal(event):
            return True
        fax = event.raw_params.get("fax")
        return isinstance(fax, dict) and fax.get("type") in self.terminal_states


#: Tap, stream and transcribe also end on ``error``: the official client waits for
#: ``finished`` only, so a failed tap left its ``wait()`` hanging (reference §15.3).
_FINISHED_OR_ERROR: frozenset[str] = frozenset({"finished", "error"})


class TapAction(_Stoppable):
    """A running ``calling.tap``: media copied to a device until stopped."""

    event_type: ClassVar[str] = EVENT_CALL_TAP
    terminal_states: ClassVar[frozenset[str]] = _FINISHED_OR_ERROR
    method_prefix: ClassVar[str] = "calling.tap"


class StreamAction(_Stoppable):
    """A running ``calling.stream``: audio streamed to a WebSocket until stopped."""

    event_type: ClassVar[str] = EVENT_CALL_STREAM
    terminal_states: ClassVar[frozenset[str]] = _FINISHED_OR_ERROR
    method_prefix: ClassVar[str] = "calling.stream"


class PayAction(_Stoppable):
    """A running ``calling.pay``: a payment collected over the call."""

    event_type: ClassVar[str] = EVENT_CALL_PAY
    method_prefix: ClassVar[str] = "calling.pay"


class TranscribeAction(_Stoppable):
    """A running ``calling.transcribe``: its result arrives with the terminal event."""

    event_type: ClassVar[str] = EVENT_CALL_TRANSCRIBE
    terminal_states: ClassVar[frozenset[str]] = _FINISHED_OR_ERROR
    method_prefix: ClassVar[str] = "calling.transcribe"


class AIAction(_Stoppable):
    """An AI agent session: ends on its ``finished``/``error`` event or with the call."""

    event_type: ClassVar[str] = EVENT_CALL_AI
    method_prefix: ClassVar[str] = "calling.ai"
