"""The command core of a call, and the commands that are not media operations.

``CommandCore`` is what every command goes through: ``_command`` for a plain
RPC (404/410, the call is gone, give ``{}`` as in the official client; every other
error raises) and ``_start`` for one that returns an action handle. The command
mixins (``ControlCommands`` here, ``MediaCommands`` and ``ServiceCommands``)
only build params. Most methods take ``**kwargs`` that go out as extra params
verbatim, as in the official client, for keys this package does not name.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

import anyio

from ._actions import Action
from ._errors import RelayError, RequestTimeout
from ._events import RelayEvent
from ._listeners import Callbacks, Dispatcher
from ._payloads import DeviceSpec, MediaItem, SipDevice
from ._streams import EventStream
from ._sync import LazyEvent
from ._telemetry import NOOP, Telemetry

__all__ = ["CommandCore", "ControlCommands", "RequestFunction", "drop_none", "normalize_media"]

logger = logging.getLogger("relay_anyio.call")

#: How a call sends a request: the session's ``request(method, params)``.
RequestFunction = Callable[..., Awaitable[dict[str, Any]]]
_A = TypeVar("_A", bound=Action)
_GONE_CODES = (404, 410)


def normalize_media(items: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Accept the guide's flat media (``{"type": "tts", "text": "Hi"}``), send the wire's.

    On the wire every media item nests its fields under ``params``; the guide writes
    them flat, and the official client forwards that unchanged. Both shapes are
    accepted here; flat keys are moved under ``params`` (explicit ``params`` win).
    """
    out: list[dict[str, Any]] = []
    for item in items:
        if not isinstance(item, Mapping) or "type" not in item:
            raise ValueError(f"media item needs a 'type': {item!r}")
        flat = {k: v for k, v in item.items() if k not in ("type", "params")}
        nested = item.get("params")
        if nested is not None and not isinstance(nested, Mapping):
            raise ValueError(f"media 'params' must be an object: {item!r}")
        out.append({"type": item["type"], "params": {**flat, **(nested or {})}})
    return out


def drop_none(**kwargs: Any) -> dict[str, Any]:
    """The keyword arguments that were given (not None): the optional params to send."""
    return {k: v for k, v in kwargs.items() if v is not None}


class CommandCore:
    """Sending commands on a call; the state it reads is the call's (see ``Call``)."""

    call_id: str
    node_id: str
    state: str
    end_reason: str
    _request: RequestFunction
    _actions: dict[str, Action]
    _ended: LazyEvent
    _dispatcher: Dispatcher
    # The call's (``_streams.CallEvents``): an action's streams are the call's too.
    _track_stream: Callable[[EventStream], None]
    _untrack_stream: Callable[[EventStream], None]
    #: Where actions are reported; the client sets its own on every call.
    _telemetry: Telemetry = NOOP

    def _dispatch(self, callbacks: Callbacks, event: RelayEvent) -> None:
        raise NotImplementedError  # the call's (it owns the listener task)

    async def _command(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """Send a call command; 404/410 (call gone) give ``{}``, other errors raise."""
        result = await self._send(method, params)
        return {} if result is None else result

    async def _send(self, method: str, params: dict[str, Any] | None) -> dict[str, Any] | None:
        full = {"node_id": self.node_id, "call_id": self.call_id}
        if params:
            full.update(params)
        try:
            return await self._request(method, full)
        except RelayError as exc:
            if exc.code in _GONE_CODES:
                extra = {"call_id": self.call_id}
                if params and isinstance(params.get("control_id"), str):
                    extra["control_id"] = params["control_id"]
                logger.warning(
                    "%s on call %s: call is gone (%s)", method, self.call_id, exc, extra=extra
                )
                return None
            raise

    async def _start(
        self,
        action: _A,
        method: str,
        params: dict[str, Any],
    ) -> _A:
        """Register ``action`` before sending (an instant terminal event is not lost).

        On an ended call nothing is sent and the action is returned already done
        (``on_completed`` runs before this returns, as the call may have no listener
        task left to run it on). If the start is cancelled or times out once the
        command may have reached the server, the operation is stopped (shielded,
        bounded): nobody holds a handle that could stop it later.
        """
        telemetry = self._telemetry
        if telemetry.active:
            telemetry.action_started(self, action)  # type: ignore[arg-type]
            action._on_settled = telemetry.action_settled
        if self._ended.is_set():
            await action._complete_now(self.end_reason)
            return action
        self._actions[action.control_id] = action
        try:
            result = await self._send(method, {"control_id": action.control_id, **params})
        except BaseException as exc:
            if isinstance(exc, RequestTimeout | anyio.get_cancelled_exc_class()):
                await action._stop_quietly()  # still registered: its end event resolves it
            self._actions.pop(action.control_id, None)
            raise
        if result is None:
            self._actions.pop(action.control_id, None)
            await action._complete_now(self.end_reason or "gone")
        else:
            action.start_result = result
        return action

    @staticmethod
    def _control_id(control_id: str | None) -> str:
        return control_id or str(uuid.uuid4())


class ControlCommands(CommandCore):
    """Lifecycle, bridging, conferences, queues, digits, rooms and AI messages."""

    _hung_up: bool
    _hangup_in_flight: LazyEvent | None

    async def answer(self, **kwargs: Any) -> dict[str, Any]:
        """Answer the call (``calling.answer``); extra keyword arguments are sent as params."""
        return await self._command("calling.answer", kwargs)

    async def hangup(self, reason: str = "hangup") -> dict[str, Any]:
        """End the call (``calling.end``). A call that is already gone is a no-op.

        So is a call already hung up here: once RELAY accepted one ``calling.end``,
        another would only come back 410 (the official client sends it anyway), e.g.
        when the client exits right after a handler hung up, before "ended" arrived.
        A hangup issued while another is in flight waits for that one's answer.
        """
        while not (self._hung_up or self._ended.is_set()):
            in_flight = self._hangup_in_flight
            if in_flight is not None:
                await in_flight.wait()
                continue  # that one failed: try again, or it succeeded: done
            in_flight = self._hangup_in_flight = LazyEvent()
            try:
                result = await self._command("calling.end", {"reason": reason})
                self._hung_up = True
                return result
            finally:
                self._hangup_in_flight = None
                in_flight.set()
        return {}

    async def pass_(self) -> dict[str, Any]:
        """Decline control: the platform offers the call to another consumer."""
        return await self._command("calling.pass")

    async def connect(
        self,
        devices: Sequence[Sequence[DeviceSpec | Mapping[str, Any]]],
        *,
        ringback: Sequence[MediaItem | Mapping[str, Any]] | None = None,
        tag: str | None = None,
        max_duration: int | None = None,
        max_price_per_minute: float | None = None,
        status_url: str | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """Bridge this call to devices (outer list: in series; inner list: in parallel).

        Returns the RPC result; progress arrives as ``calling.call.connect`` events.
        """
        params = {
            "devices": [[dict(d) for d in group] for group in devices],
            **drop_none(
                ringback=normalize_media(ringback) if ringback is not None else None,
                tag=tag,
                max_duration=max_duration,
                max_price_per_minute=max_price_per_minute,
                status_url=status_url,
            ),
            **kwargs,
        }
        return await self._command("calling.connect", params)

    async def disconnect(self) -> dict[str, Any]:
        """Unbridge without hanging up either leg."""
        return await self._command("calling.disconnect")

    async def send_digits(self, digits: str, *, control_id: str | None = None) -> dict[str, Any]:
        """Send DTMF ``digits`` into the call; progress in ``calling.call.send_digits``.

        ``digits``: ``0-9 # * A-D``; ``w`` pauses 0.5 s, ``W`` 1 s.
        """
        return await self._command(
            "calling.send_digits", {"control_id": self._control_id(control_id), "digits": digits}
        )

    async def hold(self) -> dict[str, Any]:
        """Put the call on hold: the other party hears hold media until ``unhold()``."""
        return await self._command("calling.hold")

    async def unhold(self) -> dict[str, Any]:
        """Take the call off hold."""
        return await self._command("calling.unhold")

    async def denoise(self) -> dict[str, Any]:
        """Start noise reduction on the call's audio (``calling.call.denoise`` reports it)."""
        return await self._command("calling.denoise")

    async def denoise_stop(self) -> dict[str, Any]:
        """Stop noise reduction."""
        return await self._command("calling.denoise.stop")

    async def transfer(self, dest: str, **kwargs: Any) -> dict[str, Any]:
        """Hand the call to ``dest``: an https URL, SWML, or ``context:<app>``.

        Extra keys go on the wire as given.
        """
        return await self._command("calling.transfer", {"dest": dest, **kwargs})

    async def refer(
        self,
        device: SipDevice | Mapping[str, Any],
        *,
        status_url: str | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """SIP REFER this call to another endpoint; progress in ``calling.call.refer``."""
        return await self._command(
            "calling.refer", {"device": dict(device), **drop_none(status_url=status_url), **kwargs}
        )

    async def echo(
        self, *, timeout: float | None = None, status_url: str | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        """Echo the caller's audio back (``timeout`` 0: until the call ends)."""
        return await self._command(
            "calling.echo", {**drop_none(timeout=timeout, status_url=status_url), **kwargs}
        )

    async def bind_digit(
        self,
        digits: str,
        bind_method: str,
        *,
        bind_params: Mapping[str, Any] | None = None,
        realm: str | None = None,
        max_triggers: int | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """Run ``bind_method`` (e.g. ``"calling.play"``) whenever the caller keys ``digits``."""
        params = {
            "digits": digits,
            "bind_method": bind_method,
            **drop_none(
                params=dict(bind_params) if bind_params is not None else None,
                realm=realm,
                max_triggers=max_triggers,
            ),
            **kwargs,
        }
        return await self._command("calling.bind_digit", params)

    async def clear_digit_bindings(
        self, *, realm: str | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        """Remove the digit bindings of ``realm`` (all of them without one); see ``bind_digit``."""
        return await self._command(
            "calling.clear_digit_bindings", {**drop_none(realm=realm), **kwargs}
        )

    async def live_transcribe(self, action: Mapping[str, Any], **kwargs: Any) -> dict[str, Any]:
        """``action`` is ``{"start": {...}}``, ``{"stop": {}}`` or ``{"summarize": {...}}``."""
        return await self._command("calling.live_transcribe", {"action": dict(action), **kwargs})

    async def live_translate(
        self, action: Mapping[str, Any], *, status_url: str | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        """``action`` is ``{"start": {...}}``, ``{"stop": {}}`` or ``{"summarize": {...}}``, like
        ``live_transcribe``.
        """
        params = {"action": dict(action), **drop_none(status_url=status_url), **kwargs}
        return await self._command("calling.live_translate", params)

    async def join_room(
        self, name: str, *, status_url: str | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        """Join the video/audio room ``name``; progress goes to ``status_url`` if given."""
        params = {"name": name, **drop_none(status_url=status_url), **kwargs}
        return await self._command("calling.join_room", params)

    async def leave_room(self, **kwargs: Any) -> dict[str, Any]:
        """Leave the room joined with ``join_room``."""
        return await self._command("calling.leave_room", kwargs)

    async def amazon_bedrock(
        self,
        *,
        prompt: Any = None,
        SWAIG: Mapping[str, Any] | None = None,  # the wire spells it so
        ai_params: Mapping[str, Any] | None = None,
        global_data: Mapping[str, Any] | None = None,
        post_prompt: Mapping[str, Any] | None = None,
        post_prompt_url: str | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """Start an Amazon Bedrock agent; no action handle (the official API has none)."""
        params = {
            **drop_none(
                prompt=prompt,
                SWAIG=dict(SWAIG) if SWAIG is not None else None,
                params=dict(ai_params) if ai_params is not None else None,
                global_data=dict(global_data) if global_data is not None else None,
                post_prompt=dict(post_prompt) if post_prompt is not None else None,
                post_prompt_url=post_prompt_url,
            ),
            **kwargs,
        }
        return await self._command("calling.amazon_bedrock", params)

    async def ai_message(
        self,
        *,
        message_text: str | None = None,
        role: str | None = None,
        reset: Mapping[str, Any] | None = None,
        global_data: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """Inject a message into the running AI session."""
        params = drop_none(
            message_text=message_text,
            role=role,
            reset=dict(reset) if reset is not None else None,
            global_data=dict(global_data) if global_data is not None else None,
        )
        return await self._command("calling.ai_message", {**params, **kwargs})

    async def ai_hold(
        self, *, timeout: str | None = None, prompt: str | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        """Put the running AI agent on hold (``timeout`` as the wire spells it, e.g. ``"30s"``)."""
        params = {**drop_none(timeout=timeout, prompt=prompt), **kwargs}
        return await self._command("calling.ai_hold", params)

    async def ai_unhold(self, *, prompt: str | None = None, **kwargs: Any) -> dict[str, Any]:
        """Resume the AI agent put on hold by ``ai_hold``; ``prompt`` tells it what happened
        meanwhile.
        """
        return await self._command("calling.ai_unhold", {**drop_none(prompt=prompt), **kwargs})

    async def user_event(self, *, event: Any = None, **kwargs: Any) -> dict[str, Any]:
        """Send an application event (any JSON) to the call's other consumers."""
        return await self._command("calling.user_event", {**drop_none(event=event), **kwargs})

    async def queue_enter(
        self,
        queue_name: str,
        *,
        control_id: str | None = None,
        status_url: str | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """Put the call in a queue; progress arrives as ``calling.call.queue`` events."""
        params = {
            "control_id": self._control_id(control_id),
            "queue_name": queue_name,
            **drop_none(status_url=status_url),
            **kwargs,
        }
        return await self._command("calling.queue.enter", params)

    async def queue_leave(
        self,
        queue_name: str,
        *,
        control_id: str | None = None,
        queue_id: str | None = None,
        status_url: str | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """Take the call out of queue ``queue_name`` (the one ``queue_enter`` put it in)."""
        params = {
            "control_id": self._control_id(control_id),
            "queue_name": queue_name,
            **drop_none(queue_id=queue_id, status_url=status_url),
            **kwargs,
        }
        return await self._command("calling.queue.leave", params)

    async def join_conference(
        self,
        name: str,
        *,
        muted: bool | None = None,
        beep: str | None = None,
        start_on_enter: bool | None = None,
        end_on_exit: bool | None = None,
        wait_url: str | None = None,
        max_participants: int | None = None,
        record: str | None = None,
        region: str | None = None,
        trim: str | None = None,
        coach: str | None = None,
        status_callback: str | None = None,
        status_callback_event: str | None = None,
        status_callback_event_type: str | None = None,
        status_callback_method: str | None = None,
        recording_status_callback: str | None = None,
        recording_status_callback_event: str | None = None,
        recording_status_callback_event_type: str | None = None,
        recording_status_callback_method: str | None = None,
        stream_obj: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """Join (or start) the named conference.

        The result may carry the ``conference_id`` that ``leave_conference`` needs;
        conference progress arrives as ``calling.conference`` events (the ones without
        a ``call_id`` reach ``client.on(EVENT_CONFERENCE, ...)``). ``stream_obj`` is
        sent as ``stream``.
        """
        params = {
            "name": name,
            **drop_none(
                muted=muted,
                beep=beep,
                start_on_enter=start_on_enter,
                end_on_exit=end_on_exit,
                wait_url=wait_url,
                max_participants=max_participants,
                record=record,
                region=region,
                trim=trim,
                coach=coach,
                status_callback=status_callback,
                status_callback_event=status_callback_event,
                status_callback_event_type=status_callback_event_type,
                status_callback_method=status_callback_method,
                recording_status_callback=recording_status_callback,
                recording_status_callback_event=recording_status_callback_event,
                recording_status_callback_event_type=recording_status_callback_event_type,
                recording_status_callback_method=recording_status_callback_method,
                stream=dict(stream_obj) if stream_obj is not None else None,
            ),
            **kwargs,
        }
        return await self._command("calling.join_conference", params)

    async def leave_conference(self, conference_id: str, **kwargs: Any) -> dict[str, Any]:
        """Take the call out of conference ``conference_id``."""
        return await self._command(
            "calling.leave_conference", {"conference_id": conference_id, **kwargs}
        )
