"""An asyncio web app (Starlette): the RELAY client lives in the app's lifespan.

    POST /calls     {"to": "+1555...", "text": "..."}  dial, speak ``text`` in the
                    background, hang up; answers 201 {"call_id": ...} once answered
    POST /messages  {"to": "+1555...", "body": "..."}   send an SMS; 202 {"message_id": ...}
    GET  /health    200 while connected to RELAY, 503 otherwise

    SIGNALWIRE_PROJECT_ID=... SIGNALWIRE_API_TOKEN=... SIGNALWIRE_SPACE=... \\
        uvicorn embedding_starlette:app

The lifespan opens the client and a task group for work that outlives a request (the
spoken message). Both are entered and left by the server's lifespan task, so no task
leaks past shutdown: pending work is cancelled, its calls hung up, then the client
disconnects. FastAPI takes the same lifespan: ``FastAPI(lifespan=lambda app: RelayLifespan())``.
"""

from __future__ import annotations

from contextlib import AsyncExitStack
from types import TracebackType
from typing import Any

import anyio
import anyio.abc
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from relay_anyio import Call, ConnectionState, RelayClient, RelayError

FROM_NUMBER = "+15550000000"


class RelayLifespan:
    """Starlette lifespan: a connected RelayClient and a task group, for the app's life.

    Its state (``request.state.relay``, ``request.state.tasks``) is handed to every
    request. ``client_options`` go to :class:`RelayClient` (credentials default to the
    ``SIGNALWIRE_*`` environment variables).
    """

    def __init__(self, **client_options: Any) -> None:
        self.client_options = client_options
        self._stack = AsyncExitStack()
        self._tasks: anyio.abc.TaskGroup | None = None

    async def __aenter__(self) -> dict[str, Any]:
        async with AsyncExitStack() as stack:
            client = await stack.enter_async_context(
                RelayClient(contexts=["web"], **self.client_options)
            )
            self._tasks = await stack.enter_async_context(anyio.create_task_group())
            self._stack = stack.pop_all()
        return {"relay": client, "tasks": self._tasks}

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        if self._tasks is not None:
            self._tasks.cancel_scope.cancel()  # shutting down: stop background work
        return await self._stack.__aexit__(exc_type, exc, tb)


async def speak_and_hang_up(call: Call, text: str) -> None:
    try:
        play = await call.play([{"type": "tts", "text": text}])
        await play.wait(timeout=120)
    finally:
        with anyio.move_on_after(5, shield=True):
            await call.hangup()


async def place_call(request: Request) -> JSONResponse:
    body = await request.json()
    relay: RelayClient = request.state.relay
    tasks: anyio.abc.TaskGroup = request.state.tasks
    device = {"type": "phone", "params": {"to_number": body["to"], "from_number": FROM_NUMBER}}
    try:
        call = await relay.dial([[device]], timeout=float(body.get("timeout", 30)))
    except TimeoutError:  # nobody answered in time (the legs were ended)
        return JSONResponse({"error": "no answer"}, status_code=504)
    except RelayError as exc:  # busy, declined, failed...
        return JSONResponse({"error": exc.message}, status_code=502)
    tasks.start_soon(speak_and_hang_up, call, body.get("text", "Hello from RELAY!"))
    return JSONResponse({"call_id": call.call_id, "state": call.state}, status_code=201)


async def send_message(request: Request) -> JSONResponse:
    body = await request.json()
    relay: RelayClient = request.state.relay
    try:
        message = await relay.send_message(
            to_number=body["to"], from_number=FROM_NUMBER, body=body["body"]
        )
    except RelayError as exc:
        return JSONResponse({"error": exc.message}, status_code=502)
    return JSONResponse({"message_id": message.message_id, "state": message.state}, status_code=202)


async def health(request: Request) -> JSONResponse:
    relay: RelayClient = request.state.relay
    connected = relay.connection_state is ConnectionState.CONNECTED
    return JSONResponse(
        {"relay": relay.connection_state.value, "active_calls": relay.active_calls},
        status_code=200 if connected else 503,
    )


def create_app(**client_options: Any) -> Starlette:
    """The app; ``client_options`` go to the RelayClient (tests point it at a fake)."""
    return Starlette(
        routes=[
            Route("/calls", place_call, methods=["POST"]),
            Route("/messages", send_message, methods=["POST"]),
            Route("/health", health),
        ],
        lifespan=lambda app: RelayLifespan(**client_options),
    )


app = create_app()  # for `uvicorn embedding_starlette:app`
