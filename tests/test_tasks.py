"""Tasks end to end: ``send_task`` through httpx to the fake server's REST endpoint,
RELAY's choice of one worker, ``@client.on_task`` on the receiving side.

Every switch the reference leaves unconfirmed (§17.1: the event's shape, what happens
to a task nobody listens for, error bodies) is run both ways; the client must be right
under each.
"""

from __future__ import annotations

import gc
import json
import logging
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, get_args

import anyio
import httpx
import pytest

from relay_anyio import (
    EVENT_TASK,
    AuthenticationError,
    RelayClient,
    RelayError,
    RequestTimeout,
    TaskEvent,
    TransportError,
    send_task,
)
from relay_anyio.testing import FakeRelayServer
from relay_anyio.testing._console import _console_task
from relay_anyio.testing._tasks import TaskErrorBody, TaskEventShape, TaskUnrouted

from .helpers import make_client, messages, program_env, python_process

pytestmark = pytest.mark.anyio

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
SHAPES: tuple[TaskEventShape, ...] = get_args(TaskEventShape)
ERROR_BODIES: tuple[TaskErrorBody, ...] = get_args(TaskErrorBody)


class Worker:
    """A client on ``contexts`` whose ``on_task`` records every task it gets."""

    def __init__(self, server: FakeRelayServer, contexts: list[str], **kwargs: Any) -> None:
        self.client = make_client(server, contexts=contexts, **kwargs)
        self.tasks: list[TaskEvent] = []
        self.changed = anyio.Event()
        self.client.on_task(self._handle)

    async def _handle(self, task: TaskEvent) -> None:
        self.tasks.append(task)
        self.changed.set()
        self.changed = anyio.Event()

    async def wait_for(self, count: int) -> None:
        with anyio.fail_after(10):  # a failure detector only
            while len(self.tasks) < count:
                await self.changed.wait()


@pytest.fixture
def two_clients(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RELAY_MAX_CONNECTIONS", "2")


def creds(server: FakeRelayServer, **overrides: Any) -> dict[str, Any]:
    """What the standalone send_task needs to reach ``server``."""
    return {"project": server.project, "token": server.token, "url": server.rest_url, **overrides}


@pytest.mark.usefixtures("two_clients")
@pytest.mark.parametrize("shape", SHAPES)
async def test_each_task_goes_to_exactly_one_of_two_workers(
    relay_server: FakeRelayServer, shape: TaskEventShape
) -> None:
    relay_server.task_event_shape = shape
    first, second = Worker(relay_server, ["office"]), Worker(relay_server, ["office"])
    sent = [{"job": n} for n in range(6)]
    async with first.client, second.client:
        for message in sent:
            await send_task("office", message, **creds(relay_server))
        await relay_server.wait_until(
            lambda: len(first.tasks) + len(second.tasks) >= len(sent), timeout=10
        )
        # Every event the server sent has been acknowledged: nothing is still on its way.
        await relay_server.wait_until(lambda: not relay_server.unacked_events(), timeout=10)
    got = [t.message for t in first.tasks] + [t.message for t in second.tasks]
    assert sorted(got, key=lambda m: m["job"]) == sent  # each once, none lost
    assert first.tasks and second.tasks  # RELAY (the fake: in turn) spread them
    assert {t.context for t in [*first.tasks, *second.tasks]} == {"office"}
    assert all(t.timestamp > 0 for t in [*first.tasks, *second.tasks])
    assert len(relay_server.sent_events(EVENT_TASK)) == len(sent)
    assert [t.outcome for t in relay_server.tasks] == ["delivered"] * len(sent)


@pytest.mark.parametrize("shape", SHAPES)
async def test_client_send_task_and_the_event_fields(
    relay_server: FakeRelayServer, shape: TaskEventShape
) -> None:
    relay_server.task_event_shape = shape
    worker = Worker(relay_server, ["office"])
    async with worker.client:
        await worker.client.send_task("office", {"job": "print", "copies": 2})
        await worker.wait_for(1)
    [task] = worker.tasks
    assert (task.context, task.message) == ("office", {"job": "print", "copies": 2})
    assert task.project_id == relay_server.project
    assert task.event_type == EVENT_TASK
    [request] = relay_server.task_requests
    assert (request["method"], request["path"], request["status"]) == (
        "POST",
        "/api/relay/rest/tasks",
        204,
    )


@pytest.mark.parametrize("body", ERROR_BODIES)
async def test_wrong_credentials_are_401(
    relay_server: FakeRelayServer, body: TaskErrorBody
) -> None:
    relay_server.task_error_body = body
    worker = Worker(relay_server, ["office"])
    async with worker.client:
        with pytest.raises(AuthenticationError) as caught:
            await send_task("office", {"job": 1}, **creds(relay_server, token="wrong"))
        with pytest.raises(AuthenticationError):
            await send_task("office", {"job": 1}, **creds(relay_server, project="other"))
    assert caught.value.code == 401
    assert caught.value.data["status"] == 401
    text = caught.value.data["body"]
    if body == "json":
        assert json.loads(text)["errors"][0]["code"] == "401"
    elif body == "text":
        assert text.startswith("401")
    else:
        assert text == ""
    assert "wrong" not in str(caught.value)  # the token is never in the error
    assert relay_server.tasks == [] and worker.tasks == []


@pytest.mark.parametrize("unrouted", get_args(TaskUnrouted))
async def test_a_context_nobody_ever_listened_on(
    relay_server: FakeRelayServer, unrouted: TaskUnrouted
) -> None:
    relay_server.task_unrouted = unrouted
    worker = Worker(relay_server, ["office"])
    async with worker.client:
        if unrouted == "reject":
            with pytest.raises(RelayError) as caught:
                await send_task("nowhere", {"job": 1}, **creds(relay_server))
            assert caught.value.code == 404
            assert "nowhere" in caught.value.data["body"]
        else:
            await send_task("nowhere", {"job": 1}, **creds(relay_server))
        assert worker.tasks == []
        if unrouted == "hold":
            # Held until someone listens: a worker subscribing later gets it.
            await worker.client.receive(["nowhere"])
            await worker.wait_for(1)
            assert worker.tasks[0].message == {"job": 1}
    expected = {"drop": "dropped", "hold": "delivered", "reject": "rejected"}[unrouted]
    assert [t.outcome for t in relay_server.tasks] == [expected]


@pytest.mark.parametrize("unrouted", get_args(TaskUnrouted))
async def test_a_context_whose_worker_stopped_listening(
    relay_server: FakeRelayServer, unrouted: TaskUnrouted
) -> None:
    relay_server.task_unrouted = unrouted
    worker = Worker(relay_server, ["office"])
    async with worker.client:
        await worker.client.send_task("office", {"job": 1})
        await worker.wait_for(1)
        await worker.client.unreceive(["office"])
        if unrouted == "reject":
            with pytest.raises(RelayError, match="HTTP 404"):
                await worker.client.send_task("office", {"job": 2})
        else:
            await worker.client.send_task("office", {"job": 2})
        await relay_server.wait_until(lambda: not relay_server.unacked_events(), timeout=10)
        assert [t.message for t in worker.tasks] == [{"job": 1}]
        if unrouted == "hold":
            await worker.client.receive(["office"])
            await worker.wait_for(2)
            assert worker.tasks[1].message == {"job": 2}


@pytest.mark.parametrize("status", [500, 503])
async def test_a_server_error_raises_and_delivers_nothing(
    relay_server: FakeRelayServer, status: int
) -> None:
    relay_server.task_fault = status
    worker = Worker(relay_server, ["office"])
    async with worker.client:
        with pytest.raises(RelayError) as caught:
            await worker.client.send_task("office", {"job": 1})
    assert type(caught.value) is RelayError
    assert caught.value.code == status
    assert f"HTTP {status}" in str(caught.value)
    assert worker.tasks == [] and relay_server.sent_events(EVENT_TASK) == []
    assert len(relay_server.task_requests) == 1  # not retried


async def test_an_endpoint_that_never_answers_is_a_timeout(relay_server: FakeRelayServer) -> None:
    relay_server.task_fault = "hang"
    # Timing is the subject: 0.5 s asked, 10 s allowed (a generous bound for a busy machine).
    with anyio.fail_after(10), pytest.raises(RequestTimeout) as caught:
        await send_task("office", {"job": 1}, **creds(relay_server), timeout=0.5)
    assert caught.value.timeout == 0.5
    [request] = relay_server.task_requests  # it arrived, once, and got no answer
    assert request["status"] is None


async def test_over_tls_both_ways(relay_server_tls: FakeRelayServer) -> None:
    server = relay_server_tls
    worker = Worker(server, ["office"])
    async with worker.client:
        await worker.client.send_task("office", {"via": "client"})
        await send_task(
            "office",
            {"via": "standalone"},
            **creds(server),
            ssl_context=server.client_ssl_context(),
        )
        await worker.wait_for(2)
    assert server.rest_url.startswith("https://localhost:")
    assert [t.message["via"] for t in worker.tasks] == ["client", "standalone"]


async def test_tls_without_the_test_ca_is_refused(relay_server_tls: FakeRelayServer) -> None:
    with pytest.raises(TransportError, match="CERTIFICATE_VERIFY_FAILED") as caught:
        await send_task("office", {}, **creds(relay_server_tls))
    assert caught.value.fatal
    assert relay_server_tls.task_requests == []


async def test_offer_task_and_its_errors(relay_server: FakeRelayServer) -> None:
    worker = Worker(relay_server, ["office"])
    async with worker.client:
        task = await relay_server.offer_task("office", {"job": "scan"})
        await worker.wait_for(1)
        with pytest.raises(LookupError, match="no session is subscribed to context 'nowhere'"):
            await relay_server.offer_task("nowhere", {})
    assert task.outcome == "delivered"
    assert task.session == worker.client.relay_protocol
    assert worker.tasks[0].message == {"job": "scan"}


@pytest.mark.parametrize(
    ("switch", "value"), [("task_unrouted", "hld"), ("task_event_shape", "flattened")]
)
async def test_a_misspelt_switch_is_an_error_not_a_third_behaviour(
    relay_server: FakeRelayServer, switch: str, value: str
) -> None:
    setattr(relay_server, switch, value)
    async with make_client(relay_server, contexts=["office"]):
        with pytest.raises(ValueError, match=f"FakeRelayServer.{switch} must be one of"):
            await relay_server.offer_task("office", {})


def leaves(group: BaseExceptionGroup[BaseException]) -> list[BaseException]:
    """The exceptions inside nested groups."""
    found: list[BaseException] = []
    for exc in group.exceptions:
        found.extend(leaves(exc) if isinstance(exc, BaseExceptionGroup) else [exc])
    return found


async def test_a_misspelt_task_fault_stops_the_server_with_a_clear_error() -> None:
    with pytest.raises(BaseExceptionGroup) as caught:
        async with FakeRelayServer() as server:
            server.task_fault = "500"  # type: ignore[assignment]  # a string, not a status
            with pytest.raises(TransportError):
                await send_task("office", {}, **creds(server))
            await anyio.sleep_forever()  # the server's failure ends this block
    [error] = [e for e in leaves(caught.value) if isinstance(e, ValueError)]
    assert "task_fault must be None, 'hang' or an HTTP status, not '500'" in str(error)


async def test_each_handler_runs_in_its_own_task(relay_server: FakeRelayServer) -> None:
    client = make_client(relay_server, contexts=["office"])
    gate, second_ran = anyio.Event(), anyio.Event()

    @client.on_task
    async def handle(task: TaskEvent) -> None:
        if task.message["n"] == 1:
            await gate.wait()  # the first job is slow...
        else:
            second_ran.set()  # ...and does not hold up the next one

    async with client:
        await relay_server.offer_task("office", {"n": 1})
        await relay_server.offer_task("office", {"n": 2})
        with anyio.fail_after(10):
            await second_ran.wait()
        gate.set()


async def test_a_failing_handler_is_logged_and_others_go_on(
    relay_server: FakeRelayServer, caplog: pytest.LogCaptureFixture
) -> None:
    client = make_client(relay_server, contexts=["office"])
    done = anyio.Event()

    @client.on_task
    async def handle(task: TaskEvent) -> None:
        if task.message["n"] == 1:
            raise RuntimeError("job failed")
        done.set()

    async with client:
        await relay_server.offer_task("office", {"n": 1})
        await relay_server.offer_task("office", {"n": 2})
        with anyio.fail_after(10):
            await done.wait()
    [record] = [r for r in caplog.records if "on_task handler failed" in r.getMessage()]
    assert record.levelno == logging.ERROR
    assert record.exc_info is not None and "job failed" in str(record.exc_info[1])
    assert record.__dict__["context"] == "office"


async def test_a_task_without_a_handler_is_dropped_with_a_warning(
    relay_server: FakeRelayServer, caplog: pytest.LogCaptureFixture
) -> None:
    async with make_client(relay_server, contexts=["office"]):
        await relay_server.offer_task("office", {"n": 1})
        await relay_server.wait_until(lambda: not relay_server.unacked_events(), timeout=10)
    assert "task on context 'office' dropped: no on_task handler" in messages(caplog)


async def test_tasks_leave_other_events_alone(relay_server: FakeRelayServer) -> None:
    # A task event carries no call_id: it reaches neither calls nor client listeners.
    worker = Worker(relay_server, ["office"])
    seen: list[Any] = []
    worker.client.on(EVENT_TASK, seen.append)
    async with worker.client:
        await relay_server.offer_task("office", {"n": 1})
        await worker.wait_for(1)
    assert seen == []


# -- the fake server's endpoint, spoken to directly ----------------------------------------


@pytest.fixture
async def http(relay_server: FakeRelayServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=relay_server.rest_url, trust_env=False) as client:
        yield client


async def test_a_jwt_cannot_send_tasks(
    relay_server: FakeRelayServer, http: httpx.AsyncClient
) -> None:
    response = await http.post(
        "/api/relay/rest/tasks",
        json={"context": "office", "message": {}},
        headers={"Authorization": f"Bearer {relay_server.jwt_tokens[0]}"},
    )
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Basic")


@pytest.mark.parametrize(
    ("method", "path", "content", "headers", "status"),
    [
        ("GET", "/api/relay/rest/tasks", None, {}, 405),
        ("POST", "/api/relay/rest/other", b"{}", {}, 404),
        ("POST", "/api/relay/rest/tasks", b"not json", {"content-type": "application/json"}, 400),
        ("POST", "/api/relay/rest/tasks", b"{}", {"content-type": "application/json"}, 400),
        ("POST", "/api/relay/rest/tasks", b"{}", {"content-type": "text/plain"}, 415),
        (
            "POST",
            "/api/relay/rest/tasks",
            b'{"context": "office", "message": [1]}',
            {"content-type": "application/json"},
            400,
        ),
    ],
)
async def test_the_fake_refuses_what_send_task_never_sends(
    relay_server: FakeRelayServer,
    http: httpx.AsyncClient,
    method: str,
    path: str,
    content: bytes | None,
    headers: dict[str, str],
    status: int,
) -> None:
    relay_server.expect_violations = True
    response = await http.request(
        method,
        path,
        content=content,
        headers=headers,
        auth=(relay_server.project, relay_server.token),
    )
    assert response.status_code == status
    assert len(relay_server.violations) == 1
    assert relay_server.tasks == []


async def test_the_websocket_still_works_beside_rest(relay_server: FakeRelayServer) -> None:
    # One port, two protocols: a client's handshake bytes reach the WebSocket intact.
    async with make_client(relay_server) as client:
        await client.execute("test.ok", {})
        await send_task("default", {"n": 1}, **creds(relay_server))
    assert relay_server.connections == 1


async def test_a_connection_silent_when_the_server_stops_is_closed() -> None:
    # Regression: the listener reads the request line before choosing REST or the
    # WebSocket; cancelled there (the server stopping), it leaked the socket, which
    # the suite turns into an error when it is garbage-collected.
    async with FakeRelayServer() as server:
        stream = await anyio.connect_tcp("127.0.0.1", server.port)
        await stream.send(b"GET ")  # no end of line: the server keeps reading
        await anyio.sleep(0.2)  # best effort: lets the server start reading it
    await stream.aclose()
    gc.collect()  # an unclosed server-side socket would warn here


# -- the console and the example programs ---------------------------------------------------


async def test_the_console_task_command(relay_server: FakeRelayServer) -> None:
    worker = Worker(relay_server, ["office"])
    async with worker.client:
        out = await _console_task(relay_server, 'office {"job": "print", "who": "it\'s me"}')
        await worker.wait_for(1)
        for bad, error in [
            ("", "usage: task CONTEXT JSON"),
            ("office", "usage: task CONTEXT JSON"),
            ("office {job}", "not JSON"),
            ("office [1, 2]", "must be a JSON object"),
        ]:
            with pytest.raises(ValueError, match=error):
                await _console_task(relay_server, bad)
        with pytest.raises(LookupError):
            await _console_task(relay_server, 'nowhere {"job": 1}')
    assert out == f"gave a task on 'office' to session {worker.client.relay_protocol}"
    assert worker.tasks[0].message == {"job": "print", "who": "it's me"}


async def test_the_example_worker_and_sender(
    relay_server_tls: FakeRelayServer, tmp_path: Path
) -> None:
    env = program_env(relay_server_tls, tmp_path)
    async with python_process(
        str(EXAMPLES / "tasks_worker.py"), env=env, stderr=subprocess.STDOUT
    ) as worker:
        await relay_server_tls.wait_until(
            lambda: "office" in relay_server_tls.subscribed_contexts(),
            timeout=10,
            what="the worker to listen on 'office'",
        )
        sender = await anyio.run_process(
            [sys.executable, str(EXAMPLES / "tasks_send.py")], env=env, check=False
        )
        assert sender.returncode == 0, sender.stdout.decode() + sender.stderr.decode()
        assert "Queued: {'job': 'callback'" in sender.stdout.decode()
        assert worker.stdout is not None
        out = ""
        with anyio.fail_after(10):
            while "Job on office" not in out:
                out += (await worker.stdout.receive()).decode()
        await relay_server_tls.wait_until(lambda: not relay_server_tls.unacked_events())
        worker.send_signal(signal.SIGINT)
        with anyio.fail_after(20):  # a failure detector only
            code = await worker.wait()
    assert "Job on office: callback for +15551234567" in out
    assert code == 0
    [request] = relay_server_tls.task_requests
    assert request["status"] == 204


async def test_the_docs_testing_snippet(relay_server: FakeRelayServer) -> None:
    # docs/tasks.md#testing, as written there.
    client = RelayClient(**relay_server.client_kwargs(), contexts=["office"])
    got: list[TaskEvent] = []

    @client.on_task
    async def handle(task: TaskEvent) -> None:
        got.append(task)

    async with client:
        await client.send_task("office", {"job": "print"})
        await relay_server.wait_until(lambda: bool(got), what="the task")
    assert got[0].message == {"job": "print"}
