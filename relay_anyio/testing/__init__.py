"""Test helpers for RELAY clients: a fake RELAY server and its pytest fixtures.

``FakeRelayServer`` speaks the RELAY wire protocol over a real WebSocket on loopback,
so a client under test runs its real transport, reconnect and resume code. The
``relay_server`` / ``relay_server_tls`` fixtures come from the ``relay_anyio`` pytest
plugin, registered automatically when the package is installed.
"""

from ._actions import FakeAction
from ._calls import FakeCall, FollowUp
from ._context import Handler, HandlerContext, JsonRpcError, ResultCodeError, ok
from ._handlers import DEFAULT_HANDLERS
from ._handlers_services import calling_default
from ._messaging import messaging_send, script_message
from ._scripts import DialScript, MessageScript
from ._server import (
    AUTH_FAILED_CODE,
    AUTH_FAILED_ERROR_CODE,
    AUTH_FAILED_MESSAGE,
    NOT_AUTHENTICATED_CODE,
    NOT_AUTHENTICATED_MESSAGE,
    FakeRelayServer,
)
from ._session import FakeSession
from ._validation import InvalidRequestError
from ._wire import JournalEntry

__all__ = [
    "AUTH_FAILED_CODE",
    "AUTH_FAILED_ERROR_CODE",
    "AUTH_FAILED_MESSAGE",
    "DEFAULT_HANDLERS",
    "NOT_AUTHENTICATED_CODE",
    "NOT_AUTHENTICATED_MESSAGE",
    "DialScript",
    "FakeAction",
    "FakeCall",
    "FakeRelayServer",
    "FakeSession",
    "FollowUp",
    "Handler",
    "HandlerContext",
    "InvalidRequestError",
    "JournalEntry",
    "JsonRpcError",
    "MessageScript",
    "ResultCodeError",
    "calling_default",
    "messaging_send",
    "ok",
    "script_message",
]
