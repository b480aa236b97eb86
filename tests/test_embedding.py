"""The embedding examples (examples/embedding_*.py, sync_portal.py) against the fake server.

Each runs in-process the way its host runs it: the trio service under trio, the anyio
program on both backends, the Starlette app under uvicorn on asyncio, and the sync
program from a worker thread through its own blocking portal.
"""

from __future__ import annotations

import io
import json
import re
import socket
from collections.abc import AsyncIterator
from typing import Any

import anyio
import httpx
import pytest
import uvicorn

from examples import embedding_anyio, embedding_starlette, embedding_trio, sync_portal
from relay_anyio import RelayClient
from relay_anyio.testing import FakeRelayServer

from .helpers import FAST, eventually

pytestmark = pytest.mark.anyio


def client_for(server: FakeRelayServer, **options: Any) -> RelayClient:
    return RelayClient(**{**server.client_kwargs(), **FAST, **options})


# -- trio service ------------------------------------------------------------------------


async def test_trio_service_surveys_callers_and_writes_records(
    relay_server: FakeRelayServer, anyio_backend_name: str
) -> None:
    if anyio_backend_name != "trio":
        pytest.skip("the trio service uses trio's nursery and channels: it runs on trio only")
    import trio

    out = io.StringIO()
    client = client_for(relay_server, contexts=["survey"])
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        await nursery.start(embedding_trio.run_service, client, out, stop)
        rated = await relay_server.offer_call("survey", from_number="+15551230001")
        rated.script_digits("4")
        silent = await relay_server.offer_call("survey", from_number="+15551230002")
        await rated.wait_for_state("ended")
        await silent.wait_for_state("ended")
        await relay_server.wait_until(lambda: out.getvalue().count("\n") == 2)
        stop.set()
    records = {r["caller"]: r for r in map(json.loads, out.getvalue().splitlines())}
    assert records["+15551230001"]["rating"] == 4
    assert records["+15551230002"]["rating"] is None
    assert records["+15551230001"]["call_id"] == rated.call_id
    assert len(relay_server.received("calling.play")) == 1  # only the rater is thanked


async def test_trio_service_hangs_up_calls_in_progress_when_stopped(
    relay_server: FakeRelayServer, anyio_backend_name: str
) -> None:
    if anyio_backend_name != "trio":
        pytest.skip("the trio service uses trio's nursery and channels: it runs on trio only")
    import trio

    relay_server.play_duration = 60  # the question is still playing at shutdown
    client = client_for(relay_server, contexts=["survey"])
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        await nursery.start(embedding_trio.run_service, client, io.StringIO(), stop)
        caller = await relay_server.offer_call("survey")
        await relay_server.wait_for_request("calling.play_and_collect")
        stop.set()
    await caller.wait_for_state("ended")
    assert caller.end_reason == "hangup"


# -- anyio program -----------------------------------------------------------------------


async def test_anyio_campaign_calls_or_texts_every_number(relay_server: FakeRelayServer) -> None:
    relay_server.script_dial(["answer"])
    relay_server.script_dial(["busy"])
    async with client_for(relay_server, contexts=["campaign"]) as client:
        outcomes = await embedding_anyio.campaign(
            client, ["+15551110001", "+15551110002"], concurrency=2
        )
    texted_outcome, called_outcome = sorted(outcomes.values())
    assert called_outcome == "reminded by phone"
    assert re.fullmatch(r"not reached \(Dial failed .+\); SMS delivered", texted_outcome)
    [sms] = relay_server.received("messaging.send")
    texted = sms["params"]["to_number"]
    assert outcomes[texted].startswith("not reached")
    assert sms["params"]["body"] == embedding_anyio.REMINDER
    [play] = relay_server.received("calling.play")
    assert play["params"]["play"][0]["params"]["text"] == embedding_anyio.REMINDER
    called = relay_server.calls[play["params"]["call_id"]]
    await relay_server.wait_until(lambda: called.state == "ended")  # follows the hangup's answer
    assert called.end_reason == "hangup"


async def test_anyio_campaign_cancelled_hangs_up_its_calls(relay_server: FakeRelayServer) -> None:
    relay_server.play_duration = 60
    async with client_for(relay_server, contexts=["campaign"]) as client:
        async with anyio.create_task_group() as tg:
            tg.start_soon(embedding_anyio.campaign, client, ["+15551110001"])
            await relay_server.wait_for_request("calling.play")  # the call is up, playing
            tg.cancel_scope.cancel()
    [play] = relay_server.received("calling.play")
    called = relay_server.calls[play["params"]["call_id"]]
    await relay_server.wait_until(lambda: called.state == "ended")  # follows the hangup's answer
    assert called.end_reason == "hangup"


# -- asyncio web app ---------------------------------------------------------------------


class WebApp:
    """The Starlette app served by uvicorn on a loopback port, and an HTTP client for it."""

    def __init__(self, server: uvicorn.Server, http: httpx.AsyncClient) -> None:
        self.server = server
        self.http = http

    async def get(self, path: str) -> httpx.Response:
        return await self.http.get(path)

    async def post(self, path: str, body: dict[str, Any]) -> httpx.Response:
        return await self.http.post(path, json=body)


@pytest.fixture
async def web_app(relay_server: FakeRelayServer, anyio_backend_name: str) -> AsyncIterator[WebApp]:
    if anyio_backend_name != "asyncio":
        pytest.skip("a Starlette app (an asyncio web app) runs on asyncio only")
    app = embedding_starlette.create_app(**relay_server.client_kwargs(), **FAST)
    server = uvicorn.Server(uvicorn.Config(app, lifespan="on", log_level="warning"))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        async with anyio.create_task_group() as tg:
            tg.start_soon(lambda: server.serve(sockets=[sock]))
            # uvicorn's flag, not the fake server's state: poll it.
            await eventually(lambda: server.started, timeout=10)
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
                yield WebApp(server, http)
            server.should_exit = True


async def test_web_app_places_a_call_from_an_endpoint(
    relay_server: FakeRelayServer, web_app: WebApp
) -> None:
    assert (await web_app.get("/health")).json() == {"relay": "connected", "active_calls": 0}
    response = await web_app.post("/calls", {"to": "+15559876543", "text": "Your code is 42"})
    assert response.status_code == 201
    call_id = response.json()["call_id"]
    [dial] = relay_server.received("calling.dial")
    assert dial["params"]["devices"][0][0]["params"]["to_number"] == "+15559876543"
    assert relay_server.calls[call_id].direction == "outbound"
    # The message is spoken in the background, then the call is hung up.
    await relay_server.calls[call_id].wait_for_state("ended")
    [play] = relay_server.received("calling.play")
    assert (play["params"]["call_id"], play["params"]["play"][0]["params"]["text"]) == (
        call_id,
        "Your code is 42",
    )


async def test_web_app_reports_a_failed_dial_and_sends_messages(
    relay_server: FakeRelayServer, web_app: WebApp
) -> None:
    relay_server.script_dial(["busy"])
    response = await web_app.post("/calls", {"to": "+15559876543"})
    assert response.status_code == 502
    assert response.json()["error"].startswith("Dial failed")
    response = await web_app.post("/messages", {"to": "+15559876543", "body": "hi"})
    assert response.status_code == 202
    assert response.json()["state"] == "queued"
    [sms] = relay_server.received("messaging.send")
    assert sms["params"]["body"] == "hi"


async def test_web_app_shutdown_hangs_up_calls_still_speaking(
    relay_server: FakeRelayServer, web_app: WebApp
) -> None:
    relay_server.play_duration = 60  # still speaking when the server shuts down
    response = await web_app.post("/calls", {"to": "+15559876543"})
    call = relay_server.calls[response.json()["call_id"]]
    await relay_server.wait_for_request("calling.play")
    web_app.server.should_exit = True  # what SIGTERM does to uvicorn
    await call.wait_for_state("ended")
    assert call.end_reason == "hangup"


# -- synchronous program -----------------------------------------------------------------


async def test_sync_program_sends_and_calls_through_a_blocking_portal(
    relay_server: FakeRelayServer, anyio_backend_name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    options = {**relay_server.client_kwargs(), **FAST, "backend": anyio_backend_name}
    await anyio.to_thread.run_sync(
        lambda: sync_portal.main("+15559876543", "Your order has shipped.", **options)
    )
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "SMS to +15559876543: delivered"
    call_id = out[1].split()[3]
    assert out[1] == f"call to +15559876543: {call_id} done"
    # The program returns once calling.end is answered; the server's "ended" follows.
    await relay_server.calls[call_id].wait_for_state("ended")
    [play] = relay_server.received("calling.play")
    assert play["params"]["play"][0]["params"]["text"] == "Your order has shipped."
    # The portal's client disconnected when the program left its `with` block.
    await relay_server.wait_until(lambda: relay_server.active_connections == 0)
