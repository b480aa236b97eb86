"""Handlers of media operations: play, record, collect, detect, digits, tap, stream, transcribe.

Each starts a ``FakeAction`` on its call (or acts on one by ``control_id``) and queues
its events as follow-ups; see ``_context.py`` for why they come after the response.
"""

from __future__ import annotations

import functools
import re
from typing import Any, Final

from .._constants import (
    EVENT_CALL_COLLECT,
    EVENT_CALL_DETECT,
    EVENT_CALL_PLAY,
    EVENT_CALL_RECORD,
    EVENT_CALL_SEND_DIGITS,
    EVENT_CALL_STREAM,
    EVENT_CALL_TAP,
    EVENT_CALL_TRANSCRIBE,
    PLAY_STATE_FINISHED,
    PLAY_STATE_PAUSED,
    PLAY_STATE_PLAYING,
    RECORD_STATE_RECORDING,
)
from ._actions import (
    FakeAction,
    collect_payload,
    recording_url,
    stream_fields,
    tap_fields,
)
from ._calls import (
    FakeCall,
    finish_action,
)
from ._context import (
    Handler,
    HandlerContext,
    ResultCodeError,
    accepted,
    invalid_params,
    ok,
    stop_action,
)
from ._scripts import DetectScript
from ._switches import DETECT_ENDS, choice

JSONObject = dict[str, Any]

__all__ = ["MEDIA_HANDLERS"]


# -- play ------------------------------------------------------------------------------------


async def _play(ctx: HandlerContext, params: JSONObject) -> JSONObject:
    call, action = ctx.start_action(EVENT_CALL_PLAY)
    ctx.then(functools.partial(call.emit_action, action, {"state": PLAY_STATE_PLAYING}))
    if call.take_failure(ctx.method):
        ctx.then(functools.partial(call.emit_action, action, {"state": "error"}))
    ctx.then(functools.partial(_finish_play, call, action), ctx.server.play_duration)
    return accepted("Playing", call, action)


async def _finish_play(call: FakeCall, action: FakeAction) -> None:
    if action.state == PLAY_STATE_PAUSED:
        action.finish_on_resume = True
    else:
        await finish_action(call, action)


def _pause_handler(running_state: str) -> Handler:
    """``.pause`` of an action whose running state is ``running_state``."""

    async def pause(ctx: HandlerContext, params: JSONObject) -> JSONObject:
        call, action = ctx.find_action()
        if action.state == running_state:
            ctx.then(functools.partial(call.emit_action, action, {"state": PLAY_STATE_PAUSED}))
        return ok("Paused")

    return pause


def _resume_handler(running_state: str) -> Handler:
    """``.resume``: back to ``running_state``, finishing a play whose time ran out."""

    async def resume(ctx: HandlerContext, params: JSONObject) -> JSONObject:
        call, action = ctx.find_action()
        if action.state == PLAY_STATE_PAUSED:
            ctx.then(functools.partial(call.emit_action, action, {"state": running_state}))
            if action.finish_on_resume:
                ctx.then(functools.partial(finish_action, call, action))
        return ok("Resumed")

    return resume


async def _control_ack(ctx: HandlerContext, params: JSONObject) -> JSONObject:
    """Controls with no visible effect (``.volume``): the action must exist."""
    ctx.find_action()
    return ok()


# -- record ----------------------------------------------------------------------------------


async def _record(ctx: HandlerContext, params: JSONObject) -> JSONObject:
    call, action = ctx.start_action(EVENT_CALL_RECORD)
    ctx.then(functools.partial(call.emit_action, action, {"state": RECORD_STATE_RECORDING}))
    if call.take_failure(ctx.method):  # nothing was heard
        ctx.then(functools.partial(call.emit_action, action, {"state": "no_input"}))
    if (duration := ctx.server.record_duration) is not None:
        ctx.then(functools.partial(finish_action, call, action), duration)
    extra = {"url": recording_url(action)} if ctx.server.record_result_url else {}
    return accepted("Recording", call, action, **extra)


# -- input ---------------------------------------------------------------------------------


async def _collect(ctx: HandlerContext, params: JSONObject) -> JSONObject:
    call, action = ctx.start_action(EVENT_CALL_COLLECT)
    ctx.then(functools.partial(_deliver_collect, call, action), ctx.server.collect_delay)
    return accepted("Collecting", call, action)


async def _play_and_collect(ctx: HandlerContext, params: JSONObject) -> JSONObject:
    call, action = ctx.start_action(EVENT_CALL_COLLECT)
    playing = {"state": PLAY_STATE_PLAYING}
    ctx.then(functools.partial(call.emit_action, action, playing, event_type=EVENT_CALL_PLAY))
    ctx.then(functools.partial(_end_prompt, call, action), ctx.server.play_duration)
    return accepted("Collecting", call, action)


async def _end_prompt(call: FakeCall, action: FakeAction) -> None:
    """The prompt of a play_and_collect ends; the collect result follows."""
    if not action.active:
        return
    finished = {"state": PLAY_STATE_FINISHED}
    await call.emit_action(action, finished, event_type=EVENT_CALL_PLAY)
    await call.server.run_after(
        call.server.collect_delay, functools.partial(_deliver_collect, call, action)
    )


async def _deliver_collect(call: FakeCall, action: FakeAction) -> None:
    """The input: start of input and partial results if asked for, then the final one.

    Interim results carry ``final: false`` and no ``state`` (their exact shape is
    unconfirmed, reference §12.6); only the last one is ``final: true``. While the
    call's input is held (``hold_input``), this waits for ``give_input``.
    """
    if not action.active:
        return
    if call.waiting_input is not None:
        call.waiting_input.append(functools.partial(_deliver_collect, call, action))
        return
    result = call.next_collect_result()
    spec = action.params.get("collect") if action.kind == "calling.play_and_collect" else None
    spec = spec if isinstance(spec, dict) else action.params
    if result.get("type") in ("digit", "speech"):
        if spec.get("send_start_of_input") is True:
            await call.emit_action(action, {"result": {"type": "start_of_input"}, "final": False})
        if spec.get("partial_results") is True:
            for partial in _partial_results(result):
                await call.emit_action(action, {"result": partial, "final": False})
    await call.emit_action(action, collect_payload(result))


def _partial_results(result: JSONObject) -> list[JSONObject]:
    """What a recogniser reports before ``result``: growing prefixes of the input."""
    params = result.get("params")
    params = params if isinstance(params, dict) else {}
    if result.get("type") == "digit":
        digits = str(params.get("digits", ""))
        return [{"type": "digit", "params": {"digits": digits[:n]}} for n in range(1, len(digits))]
    words = str(params.get("text", "")).split()
    return [
        {"type": "speech", "params": {"text": " ".join(words[:n]), "confidence": 0.5}}
        for n in range(1, len(words))
    ]


async def _detect(ctx: HandlerContext, params: JSONObject) -> JSONObject:
    call, action = ctx.start_action(EVENT_CALL_DETECT)
    spec = params.get("detect")
    kind = spec.get("type", "machine") if isinstance(spec, dict) else "machine"
    ctx.then(functools.partial(_deliver_detect, call, action, str(kind)))
    return accepted("Detecting", call, action)


async def _deliver_detect(call: FakeCall, action: FakeAction, kind: str) -> None:
    """The scripted detection results, one event each; then the detector's end.

    The first result goes out at once, each later one (a machine's ``READY``...) its
    script's ``gap`` after the one before, unless a stop or the call's end finished
    the detector meanwhile. After the last, ``server.detect_end`` says whether the
    detector reports its end (reference §12.8: unconfirmed) or just goes quiet.
    """
    script = call.next_detect_script(kind)
    end = choice("detect_end", call.server.detect_end, DETECT_ENDS)
    await _detect_result(call, action, kind, script, 0, end)


async def _detect_result(
    call: FakeCall, action: FakeAction, kind: str, script: DetectScript, index: int, end: str
) -> None:
    if not action.active:
        return
    detect = {"type": kind, "params": {"event": script.events[index]}}
    await call.emit_action(action, {"detect": detect})
    if index + 1 < len(script.events):
        later = functools.partial(_detect_result, call, action, kind, script, index + 1, end)
        await call.server.run_after(script.gap, later)
    elif end == "finished_event":
        action.state = "finished"
        await call.emit_action(action, {"detect": {"type": kind, "params": {"event": "finished"}}})
    elif end == "finished_state":
        await call.emit_action(action, {"state": "finished"})
    else:
        action.state = "finished"  # quiet from now on: a late stop sends nothing


# -- digits, media taps, streams, transcription --------------------------------------------

_DTMF: Final = re.compile(r"[0-9#*A-DwW]+")


async def _send_digits(ctx: HandlerContext, params: JSONObject) -> JSONObject:
    call = ctx.call
    digits = params.get("digits")
    if not isinstance(digits, str) or not _DTMF.fullmatch(digits):
        raise invalid_params("digits must be 0-9, #, *, A-D, w or W")
    control_id = params.get("control_id")
    payload: JSONObject = {"control_id": control_id} if isinstance(control_id, str) else {}
    ctx.then(functools.partial(call.emit, EVENT_CALL_SEND_DIGITS, payload | {"state": "finished"}))
    return ok("Sending Digits")


def _check_tap(params: JSONObject) -> JSONObject:
    tap, device = params.get("tap"), params.get("device")
    if not isinstance(tap, dict) or "type" not in tap or not isinstance(tap.get("params"), dict):
        raise invalid_params("tap needs both type and params")
    device_params = device.get("params") if isinstance(device, dict) else None
    if not isinstance(device, dict) or not isinstance(device_params, dict):
        raise invalid_params("device needs type and params")
    needed = {"rtp": ("addr", "port"), "ws": ("uri",)}.get(str(device.get("type")))
    if needed is None or any(key not in device_params for key in needed):
        raise invalid_params("device must be rtp (addr, port) or ws (uri)")
    return device


async def _tap(ctx: HandlerContext, params: JSONObject) -> JSONObject:
    _ = ctx.call  # an unknown or ended call is reported before bad params
    device = _check_tap(params)
    call, action = ctx.start_action(EVENT_CALL_TAP)
    ctx.then(
        functools.partial(call.emit_action, action, {"state": "tapping", **tap_fields(action)})
    )
    if call.take_failure(ctx.method):
        ctx.then(
            functools.partial(call.emit_action, action, {"state": "error", **tap_fields(action)})
        )
    source = {
        "type": device["type"],
        "params": {"addr": "127.0.0.1", "port": 49152, "codec": "PCMU"},
    }
    return accepted("Tapping", call, action, source_device=source)


async def _stream(ctx: HandlerContext, params: JSONObject) -> JSONObject:
    _ = ctx.call
    url = params.get("url")
    if not isinstance(url, str) or not url.startswith(("ws://", "wss://")):
        raise invalid_params("url must be a ws:// or wss:// URL")
    call, action = ctx.start_action(EVENT_CALL_STREAM)
    streaming = {"state": "streaming", **stream_fields(action)}
    ctx.then(functools.partial(call.emit_action, action, streaming))
    if call.take_failure(ctx.method):
        failed = {"state": "error", **stream_fields(action)}
        ctx.then(functools.partial(call.emit_action, action, failed))
    return accepted("Streaming", call, action)


async def _transcribe(ctx: HandlerContext, params: JSONObject) -> JSONObject:
    """No event until it ends: the reference knows only the ``finished`` state."""
    call = ctx.call
    if any(a.kind == ctx.method and a.active for a in call.actions.values()):
        raise ResultCodeError("409", "Transcription already in progress")
    call, action = ctx.start_action(EVENT_CALL_TRANSCRIBE)
    if call.take_failure(ctx.method):
        ctx.then(functools.partial(call.emit_action, action, {"state": "error"}))
    return accepted("Transcribing", call, action)


#: The methods this module serves, for ``DEFAULT_HANDLERS``.
MEDIA_HANDLERS: Final[dict[str, Handler]] = {
    "calling.play": _play,
    "calling.play.stop": stop_action,
    "calling.play.pause": _pause_handler(PLAY_STATE_PLAYING),
    "calling.play.resume": _resume_handler(PLAY_STATE_PLAYING),
    "calling.play.volume": _control_ack,
    "calling.record": _record,
    "calling.record.stop": stop_action,
    "calling.record.pause": _pause_handler(RECORD_STATE_RECORDING),
    "calling.record.resume": _resume_handler(RECORD_STATE_RECORDING),
    "calling.play_and_collect": _play_and_collect,
    "calling.play_and_collect.stop": stop_action,
    "calling.play_and_collect.volume": _control_ack,
    "calling.collect": _collect,
    "calling.collect.stop": stop_action,
    "calling.collect.start_input_timers": _control_ack,
    "calling.detect": _detect,
    "calling.detect.stop": stop_action,
    "calling.send_digits": _send_digits,
    "calling.tap": _tap,
    "calling.tap.stop": stop_action,
    "calling.stream": _stream,
    "calling.stream.stop": stop_action,
    "calling.transcribe": _transcribe,
    "calling.transcribe.stop": stop_action,
}
