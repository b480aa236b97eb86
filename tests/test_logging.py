"""Logs a fleet can search: structured call fields, JSON lines, folded storms.

The SDK's own records are produced by real clients against the fake server (or, for
a reconnect storm, against a closed loopback port); the repeat filter runs on a fake
clock, so no test waits for a window to pass.
"""

from __future__ import annotations

import io
import json
import logging
import socket
import sys
from collections.abc import Iterator
from typing import Any

import anyio
import pytest

import relay_anyio._logsetup
from relay_anyio import (
    Call,
    JsonFormatter,
    RelayClient,
    RelayEvent,
    RepeatFilter,
    configure_logging,
)
from relay_anyio.testing import FakeRelayServer

from .helpers import FAST, eventually, make_client

pytestmark = pytest.mark.anyio

PROJECT = "7d5c1e2a-3b4f-4c6d-8e9f-0a1b2c3d4e5f"
TOKEN = "PT9f8e7d6c5b4a39281706f5e4d3c2b1a0"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def record(
    message: str, *args: Any, level: int = logging.WARNING, **extra: Any
) -> logging.LogRecord:
    rec = logging.LogRecord("relay_anyio.session", level, __file__, 1, message, args, None)
    for key, value in extra.items():
        setattr(rec, key, value)
    return rec


@pytest.fixture
def root_logging() -> Iterator[logging.Logger]:
    """The root logger, given back as it was (configure_logging changes it)."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        yield root
    finally:
        for handler in root.handlers:
            if handler not in handlers:
                root.removeHandler(handler)
        root.setLevel(level)
        relay_anyio._logsetup._installed = None


# -- the JSON formatter ---------------------------------------------------------------


def test_json_lines_carry_the_extra_fields_and_mask_secrets() -> None:
    rec = record(
        "could not stop %s:\nfirst line\nsecond",
        "play",
        call_id="c-1",
        control_id="ctl-1",
        token="PT-secret",
        params={"auth": {"password": "hunter2", "user": "u"}, "n": [1, {"jwt_token": "x"}]},
        peer=("127.0.0.1", 80),
    )
    line = JsonFormatter().format(rec)
    assert "\n" not in line  # one object per line, whatever the message holds
    out = json.loads(line)
    assert out["message"] == "could not stop play:\nfirst line\nsecond"
    assert (out["level"], out["logger"]) == ("WARNING", "relay_anyio.session")
    assert out["time"].endswith("Z") and "T" in out["time"]
    assert (out["call_id"], out["control_id"]) == ("c-1", "ctl-1")
    assert out["token"] == "***"
    assert out["params"] == {
        "auth": {"password": "***", "user": "u"},
        "n": [1, {"jwt_token": "***"}],
    }
    assert out["peer"] == "('127.0.0.1', 80)"
    assert "PT-secret" not in line and "hunter2" not in line


def test_json_lines_hold_the_traceback() -> None:
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        rec = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    out = json.loads(JsonFormatter().format(rec))
    assert "RuntimeError: boom" in out["exc_info"]
    assert "Traceback" in out["exc_info"]


# -- the SDK's records about calls carry their ids --------------------------------------


async def test_records_about_a_call_carry_its_call_id_and_control_id(
    relay_server: FakeRelayServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Three of the SDK's records about one call, each from a real failure: a listener
    that raises, a handler that raises, a play that cannot be stopped."""
    client = make_client(relay_server)
    done = anyio.Event()
    controls: list[str] = []

    @client.on_call
    async def handler(call: Call) -> None:
        def broken(event: RelayEvent) -> None:
            raise ValueError("listener bug")

        call.on("test.poke", broken)
        await call.answer()
        play = await call.play([{"type": "tts", "text": "hi"}])
        controls.append(play.control_id)
        await call.wait_for("test.poked")
        relay_server.fail_next("calling.play.stop", "500", "cannot stop")
        done.set()
        raise RuntimeError("handler bug")  # returns with the play running: stopped

    relay_server.play_duration = 60
    caplog.set_level(logging.WARNING, logger="relay_anyio")
    async with client:
        fake = await relay_server.offer_call()
        await relay_server.wait_for_request("calling.play")
        await fake.send_event("test.poke", {"call_id": fake.call_id})
        await fake.send_event("test.poked", {"call_id": fake.call_id})
        with anyio.fail_after(10):
            await done.wait()
        await eventually(lambda: any("could not stop" in r.getMessage() for r in caplog.records))
        await fake.remote_hangup()

    def find(text: str) -> logging.LogRecord:
        return next(r for r in caplog.records if text in r.getMessage())

    listener = find("failed on test.poke")
    handler_failed = find("on_call handler failed")
    not_stopped = find("could not stop")
    for rec in (listener, handler_failed, not_stopped):
        assert getattr(rec, "call_id", None) == fake.call_id, rec.getMessage()
    assert getattr(not_stopped, "control_id", None) == controls[0]
    fields = json.loads(JsonFormatter().format(not_stopped))
    assert (fields["call_id"], fields["control_id"]) == (fake.call_id, controls[0])
    assert "call_id" in json.loads(JsonFormatter().format(handler_failed))


# -- folding repeated warnings -------------------------------------------------------


def test_repeats_within_the_window_are_counted_then_summarised() -> None:
    clock = FakeClock()
    emitted: list[logging.LogRecord] = []
    repeats = RepeatFilter(60, clock=clock, emit=emitted.append)
    assert repeats.filter(record("connection failed: %s", "refused"))
    for _ in range(5):
        clock.now += 1
        assert not repeats.filter(record("connection failed: %s", "refused"))
    assert repeats.filter(record("connection failed: %s", "reset"))  # another message
    assert repeats.filter(record("reconnecting in %.2f s", 1.0, level=logging.INFO))
    assert repeats.filter(record("reconnecting in %.2f s", 1.0, level=logging.INFO))
    clock.now += 60
    again = record("connection failed: %s", "refused")
    assert repeats.filter(again)
    assert (
        again.getMessage() == "connection failed: refused (repeated 5 more times in the last 65 s)"
    )
    assert getattr(again, "repeated", None) == 5
    assert emitted == []  # its count rode on the next occurrence
    clock.now += 1
    assert not repeats.filter(record("connection failed: %s", "refused"))  # a new window


def test_a_storm_that_stopped_gets_its_summary() -> None:
    clock = FakeClock()
    emitted: list[logging.LogRecord] = []
    repeats = RepeatFilter(10, clock=clock, emit=emitted.append)
    repeats.filter(record("connection lost: %s", "dead", call_id="c-9"))
    for _ in range(3):
        repeats.filter(record("connection lost: %s", "dead", call_id="c-9"))
    clock.now += 11
    assert repeats.filter(record("something else"))
    [summary] = emitted
    assert summary.getMessage() == "connection lost: dead (repeated 3 more times in the last 11 s)"
    assert getattr(summary, "call_id", None) == "c-9"  # the fields of what it stands for
    assert repeats.filter(summary)  # a summary is never folded itself
    repeats.filter(record("late: %d", 1))
    repeats.filter(record("late: %d", 1))
    repeats.flush()
    assert [s.getMessage() for s in emitted[1:]] == [
        "late: 1 (repeated 1 more times in the last 0 s)"
    ]


def test_distinct_messages_tracked_are_bounded() -> None:
    clock = FakeClock()
    emitted: list[logging.LogRecord] = []
    repeats = RepeatFilter(60, clock=clock, emit=emitted.append, max_keys=2)
    for n in range(3):
        for _ in range(2):
            repeats.filter(record("failure %d", n))
    assert len(repeats._seen) == 2
    assert [s.getMessage() for s in emitted] == [
        "failure 0 (repeated 1 more times in the last 0 s)"
    ]
    with pytest.raises(ValueError, match="window"):
        RepeatFilter(0)
    with pytest.raises(ValueError, match="max_keys"):
        RepeatFilter(1, max_keys=0)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_a_reconnect_storm_logs_one_line_then_its_count() -> None:
    """A client whose server is gone retries every few milliseconds; the log gets the
    first failure, and the count of the rest when the (fake) window has passed."""
    clock = FakeClock()
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RepeatFilter(60, clock=clock, emit=handler.handle))
    logger = logging.getLogger("relay_anyio")
    logger.addHandler(handler)
    previous = logger.level
    logger.setLevel(logging.WARNING)
    options = {**FAST, "reconnect_min_delay": 0.001, "reconnect_max_delay": 0.002}
    client = RelayClient(
        project=PROJECT, token=TOKEN, url=f"ws://127.0.0.1:{_closed_port()}", **options
    )
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(client.connect)
            await eventually(lambda: client.health().reconnects >= 20)
            tg.cancel_scope.cancel()
        attempts = client.health().reconnects
        lines = [json.loads(line) for line in stream.getvalue().splitlines()]
        failures = [line for line in lines if line["message"].startswith("connection failed")]
        assert len(failures) == 1, failures[:3]
        clock.now += 60
        handler.filters[0].flush()  # type: ignore[union-attr]
        lines = [json.loads(line) for line in stream.getvalue().splitlines()]
        [summary] = [line for line in lines if "repeated" in line]
        assert summary["message"].startswith(failures[0]["message"] + " (repeated ")
        assert summary["repeated"] >= attempts - 1 and summary["repeated"] >= 19
        assert TOKEN not in stream.getvalue()
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)


# -- configure_logging --------------------------------------------------------------


async def test_configured_json_logging_masks_frames_and_is_one_object_per_line(
    relay_server: FakeRelayServer, root_logging: logging.Logger, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SIGNALWIRE_LOG_LEVEL", "debug")
    monkeypatch.setenv("SIGNALWIRE_LOG_FORMAT", "json")
    assert relay_anyio._logsetup.logging_requested()
    stream = io.StringIO()
    handler = configure_logging(stream=stream)
    assert isinstance(handler.formatter, JsonFormatter)
    assert root_logging.level == logging.DEBUG
    client = make_client(relay_server)
    async with client:
        await client.execute("test.ok", {})
    text = stream.getvalue()
    lines = [json.loads(line) for line in text.splitlines()]
    assert any(line["logger"] == "relay_anyio.frames" for line in lines)
    assert any(line["message"].startswith("connected and authenticated") for line in lines)
    kwargs = relay_server.client_kwargs()
    assert kwargs["token"] not in text and "***" in text
    # Configured again: the handler is replaced, not added.
    configure_logging("warning", "text", stream=io.StringIO())
    ours = [h for h in root_logging.handlers if isinstance(h.formatter, JsonFormatter)]
    assert ours == [] and root_logging.level == logging.WARNING


def test_bad_levels_and_formats_name_their_source(
    root_logging: logging.Logger, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SIGNALWIRE_LOG_LEVEL", "loud")
    with pytest.raises(ValueError, match="'loud' from SIGNALWIRE_LOG_LEVEL"):
        configure_logging()
    with pytest.raises(ValueError, match="'chatty' from the argument"):
        configure_logging("chatty")
    monkeypatch.delenv("SIGNALWIRE_LOG_LEVEL")
    monkeypatch.setenv("SIGNALWIRE_LOG_FORMAT", "xml")
    with pytest.raises(ValueError, match="'xml' from SIGNALWIRE_LOG_FORMAT"):
        configure_logging()
    with pytest.raises(TypeError):
        configure_logging(True)
    assert relay_anyio._logsetup._installed is None  # nothing was half-installed
    monkeypatch.delenv("SIGNALWIRE_LOG_FORMAT")
    assert not relay_anyio._logsetup.logging_requested()
    handler = configure_logging("info", "console", stream=io.StringIO())
    assert type(handler.formatter) is logging.Formatter
    assert root_logging.level == logging.INFO
