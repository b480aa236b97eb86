"""Handlers of the session methods, a call's lifecycle and its other services.

``signalwire.receive``/``unreceive``/``ping``; ``calling.answer``/``end``/``pass``;
fax, payment, queues, SIP refer, denoise, hold, echo, AI, and the commands with no
visible effect (``calling.transfer``, rooms, digit bindings...).
"""

from __future__ import annotations

import functools
import uuid
from typing import Any, Final

from .._constants import (
    CALL_STATE_ANSWERED,
    CALL_STATE_CREATED,
    CALL_STATE_ENDED,
    CALL_STATE_RINGING,
    END_REASON_HANGUP,
    EVENT_CALL_AI,
    EVENT_CALL_DENOISE,
    EVENT_CALL_ECHO,
    EVENT_CALL_FAX,
    EVENT_CALL_HOLD,
    EVENT_CALL_PAY,
    EVENT_CALL_QUEUE,
    EVENT_CALL_REFER,
    METHOD_SIGNALWIRE_PING,
    METHOD_SIGNALWIRE_RECEIVE,
    METHOD_SIGNALWIRE_UNRECEIVE,
)
from ._actions import (
    FakeAction,
    fax_direction,
    fax_result,
)
from ._calls import (
    FakeCall,
    emit_if_active,
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
from ._scripts import FaxScript

JSONObject = dict[str, Any]

__all__ = ["SERVICE_HANDLERS", "calling_default"]


# -- session-level methods ---------------------------------------------------------------


def _contexts_param(params: JSONObject) -> list[str]:
    contexts = params.get("contexts", [])
    if not isinstance(contexts, list) or not all(isinstance(c, str) for c in contexts):
        raise invalid_params("contexts must be a list of strings")
    return contexts


async def _receive(ctx: HandlerContext, params: JSONObject) -> JSONObject:
    ctx.session.subscribe(_contexts_param(params))
    return ok("Receiving events")


async def _unreceive(ctx: HandlerContext, params: JSONObject) -> JSONObject:
    ctx.session.unsubscribe(_contexts_param(params))
    return ok("Unreceiving events")


async def _ping(ctx: HandlerContext, params: JSONObject) -> JSONObject:
    return {}


# -- call lifecycle ------------------------------------------------------------------------


async def _answer(ctx: HandlerContext, params: JSONObject) -> JSONObject:
    call = ctx.call
    if call.state in (CALL_STATE_CREATED, CALL_STATE_RINGING):
        ctx.then(functools.partial(call.set_state, CALL_STATE_ANSWERED))
    return ok("Answered")


async def _end(ctx: HandlerContext, params: JSONObject) -> JSONObject:
    call = ctx.call
    ctx.then(functools.partial(call.end, str(params.get("reason", END_REASON_HANGUP))))
    return ok("Disconnecting call")


async def _pass(ctx: HandlerContext, params: JSONObject) -> JSONObject:
    ctx.call.passed = True
    return ok("Passing call")


async def calling_default(ctx: HandlerContext, params: JSONObject) -> JSONObject:
    """Accept any command (404/410 still apply to its call): for ``set_handler``.

    The server refuses methods it has no handler for (see ``invalid_request_reply``);
    ``server.set_handler("calling.new_verb", calling_default)`` makes it accept one.
    """
    if "call_id" in params:
        _ = ctx.call
    return ok()


# -- fax and payment -----------------------------------------------------------------------


async def _fax(ctx: HandlerContext, params: JSONObject) -> JSONObject:
    """Pages (``fax.type`` ``page``), then the result (``fax.type`` ``finished``).

    The result's shape is the older RELAY SDKs' (reference §12.9): no top-level
    ``state``, which is why the official client never sees a fax end.
    """
    _ = ctx.call
    sending = ctx.method == "calling.send_fax"
    if sending and not isinstance(params.get("document"), str):
        raise invalid_params("document is required")
    call, action = ctx.start_action(EVENT_CALL_FAX)
    script = call._fax_scripts.popleft() if call._fax_scripts else FaxScript()
    failed = call.take_failure(ctx.method)
    ctx.then(functools.partial(_fax_page, call, action, script, 1, failed), script.page_delay)
    return accepted("Sending fax" if sending else "Receiving fax", call, action)


async def _fax_page(
    call: FakeCall, action: FakeAction, script: FaxScript, number: int, failed: bool
) -> None:
    if not action.active:
        return
    if failed:
        action.state = "error"
        result = fax_result(call.device, action, 0, success=False, text="fax error")
        await call.emit_action(action, {"fax": result | {"type": "error"}})
        return
    if number > script.pages:
        action.state = "finished"
        text = "" if script.success else "remote fax machine hung up"
        result = fax_result(call.device, action, script.pages, success=script.success, text=text)
        await call.emit_action(action, {"fax": result})
        return
    action.progress = number
    page = {"type": "page", "params": {"direction": fax_direction(action), "number": number}}
    await call.emit_action(action, {"fax": page})
    follow_up = functools.partial(_fax_page, call, action, script, number + 1, failed)
    await call.server.run_after(script.page_delay, follow_up)


async def _pay(ctx: HandlerContext, params: JSONObject) -> JSONObject:
    _ = ctx.call
    if not isinstance(params.get("payment_connector_url"), str):
        raise invalid_params("payment_connector_url is required")
    call, action = ctx.start_action(EVENT_CALL_PAY)
    outcome = call._pay_outcomes.popleft() if call._pay_outcomes else {"state": "finished"}
    if call.take_failure(ctx.method):
        outcome = {"state": "error"}
    if outcome is not None:
        follow_up = functools.partial(emit_if_active, call, action, outcome)
        ctx.then(follow_up, ctx.server.collect_delay)
    return accepted("Collecting payment", call, action)


# -- queues, refer, denoise, hold, echo, AI ------------------------------------------------


def _queue_name(params: JSONObject) -> str:
    name = params.get("queue_name")
    if not isinstance(name, str) or not name:
        raise invalid_params("queue_name is required")
    return name


def _queue_event(call: FakeCall, params: JSONObject, status: str, position: int) -> JSONObject:
    name = _queue_name(params)
    size = sum(
        1 for c in call.server.calls.values() if c.queue == name and c.state != CALL_STATE_ENDED
    )
    payload: JSONObject = {}
    if isinstance(params.get("control_id"), str):
        payload["control_id"] = params["control_id"]
    queue_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"queue:{name}"))
    return payload | {
        "status": status,
        "id": queue_id,
        "name": name,
        "position": position,
        "size": size,
    }


async def _queue_enter(ctx: HandlerContext, params: JSONObject) -> JSONObject:
    call = ctx.call
    call.queue = _queue_name(params)
    event = _queue_event(call, params, "enqueue", 0)
    event["position"] = event["size"]
    ctx.then(functools.partial(call.emit, EVENT_CALL_QUEUE, event))
    return ok("Entering Queue")


async def _queue_leave(ctx: HandlerContext, params: JSONObject) -> JSONObject:
    call = ctx.call
    if call.queue != _queue_name(params):
        raise ResultCodeError("404", "Call is not in that queue")
    call.queue = None
    ctx.then(functools.partial(call.emit, EVENT_CALL_QUEUE, _queue_event(call, params, "leave", 0)))
    return ok("Leaving Queue")


async def _refer(ctx: HandlerContext, params: JSONObject) -> JSONObject:
    call = ctx.call
    device = params.get("device")
    target = device.get("params") if isinstance(device, dict) else None
    if not isinstance(target, dict) or not isinstance(target.get("to"), str):
        raise invalid_params("device must be a sip device with params.to")
    event = {
        "state": "success",
        "sip_refer_to": target["to"],
        "sip_refer_response_code": "202",
        "sip_notify_response_code": "200",
    }
    ctx.then(functools.partial(call.emit, EVENT_CALL_REFER, event))
    return ok("Starting SIP REFER")


def _denoise_handler(on: bool) -> Handler:
    async def denoise(ctx: HandlerContext, params: JSONObject) -> JSONObject:
        call = ctx.call
        call.denoised = on
        ctx.then(functools.partial(call.emit, EVENT_CALL_DENOISE, {"denoised": on}))
        return ok("Denoiser on" if on else "Denoiser off")

    return denoise


def _hold_handler(hold: bool) -> Handler:
    async def hold_or_unhold(ctx: HandlerContext, params: JSONObject) -> JSONObject:
        call = ctx.call
        call.held = hold
        if call.hold_events:
            state = {"state": "hold" if hold else "unhold"}
            ctx.then(functools.partial(call.emit, EVENT_CALL_HOLD, state))
        return ok()

    return hold_or_unhold


async def _echo(ctx: HandlerContext, params: JSONObject) -> JSONObject:
    call = ctx.call
    ctx.then(functools.partial(call.emit, EVENT_CALL_ECHO, {"state": "echoing"}))
    return ok("Echo started")


async def _ai(ctx: HandlerContext, params: JSONObject) -> JSONObject:
    """No event while it runs; ``finished`` on ``calling.ai.stop`` or at call end."""
    call, action = ctx.start_action(EVENT_CALL_AI)
    if call.take_failure(ctx.method):
        ctx.then(functools.partial(call.emit_action, action, {"state": "error"}))
    return accepted("AI started", call, action)


def _accept(message: str, *required: str) -> Handler:
    """A command with no visible effect: the call must exist and ``required`` be sent."""

    async def accept(ctx: HandlerContext, params: JSONObject) -> JSONObject:
        _ = ctx.call
        missing = [key for key in required if key not in params]
        if missing:
            raise invalid_params(f"{', '.join(missing)} required")
        return ok(message)

    return accept


#: The methods this module serves, for ``DEFAULT_HANDLERS``.
SERVICE_HANDLERS: Final[dict[str, Handler]] = {
    METHOD_SIGNALWIRE_PING: _ping,
    METHOD_SIGNALWIRE_RECEIVE: _receive,
    METHOD_SIGNALWIRE_UNRECEIVE: _unreceive,
    "calling.answer": _answer,
    "calling.end": _end,
    "calling.pass": _pass,
    "calling.send_fax": _fax,
    "calling.send_fax.stop": stop_action,
    "calling.receive_fax": _fax,
    "calling.receive_fax.stop": stop_action,
    "calling.pay": _pay,
    "calling.pay.stop": stop_action,
    "calling.queue.enter": _queue_enter,
    "calling.queue.leave": _queue_leave,
    "calling.refer": _refer,
    "calling.transfer": _accept("Transferring", "dest"),
    "calling.denoise": _denoise_handler(True),
    "calling.denoise.stop": _denoise_handler(False),
    "calling.hold": _hold_handler(True),
    "calling.unhold": _hold_handler(False),
    "calling.echo": _echo,
    "calling.join_room": _accept("Joining room", "name"),
    "calling.leave_room": _accept("Leaving room"),
    "calling.bind_digit": _accept("Digit binding created", "digits", "bind_method"),
    "calling.clear_digit_bindings": _accept("Digit bindings cleared"),
    "calling.live_transcribe": _accept("Live transcription started", "action"),
    "calling.live_translate": _accept("Live translation started", "action"),
    "calling.ai": _ai,
    "calling.ai.stop": stop_action,
    "calling.ai_message": _accept("Message sent"),
    "calling.ai_hold": _accept("AI on hold"),
    "calling.ai_unhold": _accept("AI resumed"),
    "calling.amazon_bedrock": _accept("AI started"),
    "calling.user_event": _accept("Event sent"),
}
