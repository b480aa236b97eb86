"""What the fake server does when a client sends a method: the handler registry.

Every method the fake understands beyond the session layer (connect, acks, pings sent
by the server) is an entry of ``DEFAULT_HANDLERS``: an async function
``(ctx, params) -> result``. A registry of plain functions, rather than one big
``match``, is what lets each test swap a single behaviour
(``server.set_handler("calling.answer", my_handler)``) and lets later work add methods
without touching the server core. The handlers live by family, each module with its
own table: ``_handlers_services`` (session methods, a call's lifecycle, fax, pay,
queues...), ``_handlers_media`` (play, record, collect, detect, tap, stream...),
``_handlers_bridging`` (connect, conferences, dial) and ``_messaging``.
"""

from __future__ import annotations

from typing import Final

from ._context import Handler
from ._handlers_bridging import BRIDGING_HANDLERS
from ._handlers_media import MEDIA_HANDLERS
from ._handlers_services import SERVICE_HANDLERS
from ._messaging import messaging_send

__all__ = ["DEFAULT_HANDLERS"]

#: The behaviour of every method the fake knows, by method name. Copied per server, so
#: ``server.set_handler`` never leaks into other tests. Any other method is refused as
#: unknown (``server.invalid_request_reply`` says how) and recorded as a violation.
DEFAULT_HANDLERS: Final[dict[str, Handler]] = {
    **SERVICE_HANDLERS,
    **MEDIA_HANDLERS,
    **BRIDGING_HANDLERS,
    "messaging.send": messaging_send,
}
