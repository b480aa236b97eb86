"""Sending tasks: ``POST /api/relay/rest/tasks`` over HTTPS, no WebSocket needed.

A task is a JSON object handed to whichever consumer listens on a context (reference
§17.1): RELAY delivers it to **one** session subscribed to that context, as a
``queuing.relay.tasks`` event (``@client.on_task``). Sending is plain REST with the
project id and API token as basic auth, so a web app can queue work without holding a
RELAY connection. httpx does the HTTP: it is anyio-native (asyncio and trio alike) and
reads the usual proxy variables (``HTTPS_PROXY``, ``ALL_PROXY``, ``NO_PROXY``) itself.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

import anyio

from ._config import AGENT, RestConfig
from ._constants import TASKS_PATH
from ._errors import AuthenticationError, RelayError, RequestTimeout, TransportError
from ._json import dumps

if TYPE_CHECKING:
    import httpx

__all__ = ["post_task", "send_task"]

logger = logging.getLogger("relay_anyio.tasks")

#: How much of an error response body is kept (in the exception and its message).
ERROR_BODY_LIMIT: Final = 2048
_REQUEST_NAME: Final = f"POST {TASKS_PATH}"


def _encode(context: str, message: Mapping[str, Any]) -> bytes:
    """The request body, or a clear error before anything is sent."""
    if not isinstance(context, str) or not context:
        raise ValueError(f"context must be a non-empty string, got {context!r}")
    if not isinstance(message, Mapping):
        raise TypeError(f"message must be a JSON object (a mapping), got {type(message).__name__}")
    try:
        return dumps({"context": context, "message": dict(message)}).encode()
    except (TypeError, ValueError) as exc:
        raise TypeError(f"message is not JSON-serialisable: {exc}") from None


def _transport_error(rest: RestConfig, exc: httpx.HTTPError) -> TransportError:
    """A network failure as ``TransportError``; a certificate that does not verify is fatal.

    httpx's own message is empty on some backends (trio): the first cause in the
    chain that has one says what happened.
    """
    chain: list[BaseException] = []
    link: BaseException | None = exc
    while link is not None and link not in chain and len(chain) < 8:
        chain.append(link)
        link = link.__cause__ or link.__context__
    detail = next((f"{type(e).__name__}: {e}" for e in chain if str(e)), type(exc).__name__)
    fatal = any(isinstance(e, ssl.SSLCertVerificationError) for e in chain)
    return TransportError(f"send_task to {rest.base_url} failed: {detail}", fatal=fatal)


async def post_task(
    rest: RestConfig, context: str, message: Mapping[str, Any], timeout: float
) -> None:
    """The request itself, for ``send_task`` and ``RelayClient.send_task``."""
    # Imported on first use: a worker that only receives never pays httpx's import
    # (about 0.1 s); the first task sent does, once.
    import httpx

    body = _encode(context, message)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout > 0:
        raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
    verify: ssl.SSLContext | bool = rest.ssl_context if rest.ssl_context is not None else True
    url = rest.base_url + TASKS_PATH
    status = 0
    detail = b""
    with anyio.move_on_after(timeout) as scope:
        try:
            # The whole exchange is bounded by the scope; httpx's own timeouts stay off
            # so there is one limit, not four (connect, write, read, pool).
            async with (
                # trust_env: the proxy variables, except for a loopback test server.
                httpx.AsyncClient(verify=verify, trust_env=not rest.loopback, timeout=None) as http,
                http.stream(
                    "POST",
                    url,
                    content=body,
                    auth=(rest.project, rest.token),
                    headers={"Content-Type": "application/json", "User-Agent": AGENT},
                ) as response,
            ):
                status = response.status_code
                if status != 204:
                    # Only the start of an error body is kept (memory stays bounded);
                    # the rest is read and dropped, within the time limit. (Leaving
                    # httpx's stream early leaks its nested async generators.)
                    async for chunk in response.aiter_bytes():
                        if len(detail) < ERROR_BODY_LIMIT:
                            detail += chunk[: ERROR_BODY_LIMIT - len(detail)]
        except httpx.HTTPError as exc:
            raise _transport_error(rest, exc) from None
    if scope.cancelled_caught and status == 0:
        # No answer (an answer that came, e.g. 204 while the connection was being
        # closed, is reported as it was).
        raise RequestTimeout(_REQUEST_NAME, timeout)
    extra = {"context": context, "status": status}
    if status == 204:
        logger.debug("task sent to context %s", context, extra=extra)
        return
    text = detail[:ERROR_BODY_LIMIT].decode("utf-8", "replace")
    logger.debug("task for context %s refused: HTTP %d", context, status, extra=extra)
    error = AuthenticationError if status == 401 else RelayError
    raise error(
        status,
        f"send_task to context {context!r} failed: HTTP {status}" + (f": {text}" if text else ""),
        {"status": status, "body": text},
    )


async def send_task(
    context: str,
    message: Mapping[str, Any],
    *,
    project: str | None = None,
    token: str | None = None,
    host: str | None = None,
    url: str | None = None,
    ssl_context: ssl.SSLContext | None = None,
    timeout: float = 10.0,
) -> None:
    """Hand ``message`` to whichever consumer listens on ``context``; no WebSocket needed.

    RELAY delivers the task to **one** client receiving on ``context`` (its
    ``@client.on_task`` handler): a work queue across processes and machines. This
    is one HTTPS request, ``POST https://<host>/api/relay/rest/tasks`` with the
    project id and API token as basic auth, so a web app can queue work without a
    RELAY session. Credentials and host come from the arguments, else
    ``SIGNALWIRE_PROJECT_ID``, ``SIGNALWIRE_API_TOKEN`` and ``SIGNALWIRE_SPACE``
    (default ``relay.signalwire.com``), as for ``RelayClient``; a JWT cannot send
    tasks. TLS trusts the system store plus ``SIGNALWIRE_REST_CA_FILE`` (or
    ``ssl_context``); the proxy variables (``HTTPS_PROXY``, ``NO_PROXY``...) apply.
    ``url="http://127.0.0.1:port"`` reaches a local test server; plain http to any
    other host is refused, since the token would cross the network in clear.

    Returns when RELAY answered ``204 No Content``. Any other answer raises
    ``RelayError`` whose ``code`` is the HTTP status and whose ``data`` holds the
    status and the start of the body (``AuthenticationError`` for 401);
    a network failure raises ``TransportError``, and no answer within ``timeout``
    seconds ``RequestTimeout``. A task with nobody listening on its context is
    accepted or refused as RELAY decides (unconfirmed).

    Nothing is retried, on purpose: after a timeout or a dropped connection the task
    may have been delivered already, and sending it again could run the job twice.
    Retry yourself only if the job is safe to run twice (or carries its own
    idempotency key in ``message``).
    """
    rest = RestConfig.resolve(project, token, host, url=url, ssl_context=ssl_context)
    await post_task(rest, context, message, timeout)
