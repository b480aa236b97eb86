"""``relay-anyio fake-server``: the fake RELAY server on its own, with a console.

Lines typed on standard input drive it (``call``, ``sms``, ``task``, ``hangup``); the
banner prints what a client needs to connect. The CLI imports this lazily, so the
SDK proper never loads the testing tier.
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import signal
import sys
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

import anyio
import anyio.from_thread
import anyio.lowlevel
from anyio.streams.memory import MemoryObjectSendStream

from .._cli import CONSOLE_HELP
from . import FakeRelayServer
from ._demo import _summary

__all__ = ["run_fake_server"]


def _print_banner(server: FakeRelayServer, ca_file: Path | None) -> None:
    kwargs = server.client_kwargs()
    project, token = kwargs["project"], kwargs["token"]
    print(f"Fake RELAY server listening on {server.url}")
    print(f"  credentials: project={project} token={token} (or jwt_token={server.jwt_tokens[0]})")
    if ca_file is None:
        print(
            f"  relay_anyio: RelayClient(project={project!r}, token={token!r}, "
            f"url={server.url!r}, contexts=['default'])"
        )
    else:
        print(f"  TLS certificate signed by a test CA: {ca_file}")
        print("  For programs configured by the environment (like the guide's examples):")
        print(f"    export SIGNALWIRE_PROJECT_ID={project}")
        print(f"    export SIGNALWIRE_API_TOKEN={token}")
        print(f"    export SIGNALWIRE_SPACE=localhost:{server.port}")
        print(f"    export SIGNALWIRE_RELAY_CA_FILE={ca_file}")
        print(f"    export SIGNALWIRE_REST_CA_FILE={ca_file}")
        print("  Other clients: trust that CA file (Python's ssl honours SSL_CERT_FILE).")
    print(CONSOLE_HELP)
    print("Press Ctrl+C to stop.", flush=True)


def _stdin_lines(send: MemoryObjectSendStream[str]) -> None:
    """Start a daemon thread feeding standard input's lines to ``send``.

    A daemon thread, not ``anyio.to_thread``: a worker blocked in ``readline()`` must
    not keep the process alive after Ctrl+C.
    """
    token = anyio.lowlevel.current_token()

    def read() -> None:
        try:
            for line in sys.stdin:
                anyio.from_thread.run_sync(send.send_nowait, line, token=token)
        except (
            RuntimeError,
            anyio.WouldBlock,
            anyio.BrokenResourceError,
            anyio.ClosedResourceError,
            OSError,
            ValueError,
        ):
            return  # the event loop is gone, or stdin is closed: nothing more to read

    threading.Thread(target=read, name="relay-anyio stdin", daemon=True).start()


async def _console(server: FakeRelayServer) -> None:
    send, receive = anyio.create_memory_object_stream[str](100)
    _stdin_lines(send)
    async with receive:
        async for line in receive:
            try:
                command, _, rest = line.strip().partition(" ")
                if command.lower() == "task":  # JSON is not shell syntax: no shlex
                    print(await _console_task(server, rest), flush=True)
                    continue
                print(await _console_command(server, shlex.split(line)), flush=True)
            except (LookupError, ValueError) as exc:
                print(f"error: {exc}", flush=True)


async def _console_task(server: FakeRelayServer, text: str) -> str:
    context, _, raw = text.strip().partition(" ")
    if not context or not raw.strip():
        raise ValueError('usage: task CONTEXT JSON, e.g. task office {"job": "print"}')
    try:
        message = json.loads(raw)
    except ValueError as exc:
        raise ValueError(f"task: the message is not JSON ({exc})") from None
    if not isinstance(message, dict):
        raise ValueError('task: the message must be a JSON object, e.g. {"job": "print"}')
    task = await server.offer_task(context, message)
    return f"gave a task on {context!r} to session {task.session}"


async def _console_command(server: FakeRelayServer, words: list[str]) -> str:
    if not words:
        return ""
    command, rest = words[0].lower(), words[1:]
    if command == "call":
        context = rest[0] if rest else "default"
        call = await server.offer_call(context)
        if len(rest) > 1:
            call.script_digits(rest[1])
        return f"offered call {call.call_id} on {context!r}"
    if command == "sms":
        if len(rest) < 2:
            raise ValueError("usage: sms CONTEXT TEXT...")
        message = await server.offer_message(rest[0], body=" ".join(rest[1:]))
        return f"delivered message {message['message_id']} on {rest[0]!r}"
    if command == "hangup":
        calls = [c for c in server.calls.values() if c.state != "ended"]
        if rest:
            calls = [c for c in calls if c.call_id.startswith(rest[0])]
        if not calls:
            raise LookupError("no such call in progress")
        await calls[-1].remote_hangup()
        return f"hung up {calls[-1].call_id}"
    if command == "help":
        return CONSOLE_HELP
    raise ValueError(f"unknown command {command!r}; type 'help'")


async def _print_frames(server: FakeRelayServer) -> None:
    """Print one line per frame, as the demo's timeline does (acks left out)."""

    def grown_past(seen: int) -> Callable[[], bool]:
        return lambda: len(server.journal) > seen

    shown = 0
    while True:
        await server.wait_until(grown_past(shown), timeout=math.inf)
        for entry in server.journal[shown:]:
            summary = _summary(entry.frame)
            if summary != "ack":
                arrow = "client -> server" if entry.direction == "in" else "server -> client"
                print(f"  #{entry.connection} {arrow}  {summary}", flush=True)
        shown = len(server.journal)


async def run_fake_server(args: argparse.Namespace) -> None:
    """``relay-anyio fake-server``: serve until SIGINT/SIGTERM, driven by standard input."""
    server = FakeRelayServer(
        host=args.host, port=args.port, tls=args.tls, project=args.project, token=args.token
    )
    with (
        tempfile.TemporaryDirectory(prefix="relay-anyio-") as tmp,
        anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals,
    ):
        async with server, anyio.create_task_group() as tg:
            ca_file = server.ca_pem_path(args.ca_dir or tmp) if args.tls else None
            _print_banner(server, ca_file)
            tg.start_soon(_console, server)
            if args.frames:
                tg.start_soon(_print_frames, server)
            await anext(signals)
            tg.cancel_scope.cancel()
