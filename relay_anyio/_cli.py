"""``relay-anyio``: the demo, a standalone fake server, and a runner for apps.

``relay-anyio demo``
    What ``make demo`` runs: the guide's IVR against an embedded fake server.
``relay-anyio fake-server [--port N] [--tls]``
    The fake RELAY server on its own, printing the credentials (and, with ``--tls``,
    the ``SIGNALWIRE_*`` variables) a client needs. Lines typed on its standard input
    drive it: ``call CONTEXT [DIGITS]`` offers a call, ``sms CONTEXT TEXT`` delivers a
    message, ``hangup`` ends the newest call.
``relay-anyio run module:client``
    Runs an app's ``RelayClient`` (or a function returning one) with logging set up,
    until SIGINT or SIGTERM; ``--drain-timeout`` lets active calls finish first.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import importlib.util
import logging
import math
import os
import shlex
import signal
import sys
import tempfile
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Literal, cast

import anyio
import anyio.from_thread
import anyio.lowlevel
from anyio.streams.memory import MemoryObjectSendStream

from ._client import RelayClient
from ._errors import RelayError
from ._version import __version__

if TYPE_CHECKING:
    from .testing import FakeRelayServer

__all__ = ["load_client", "main"]

logger = logging.getLogger("relay_anyio.cli")

Backend = Literal["asyncio", "trio"]
_LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class CliError(Exception):
    """A usage problem reported as ``relay-anyio: error: ...`` with exit status 2."""


# -- demo --------------------------------------------------------------------------------


def _demo(args: argparse.Namespace) -> int:
    from .testing._demo import run_demo

    anyio.run(run_demo, args.verbose, backend=args.backend)
    return 0


# -- fake-server -------------------------------------------------------------------------

_CONSOLE_HELP = """\
Commands (type them here, one per line):
  call [CONTEXT] [DIGITS]   offer an inbound call on CONTEXT (default: default);
                            DIGITS answer its next collect, e.g. 'call main-ivr 1'
  sms CONTEXT TEXT...       deliver an inbound SMS on CONTEXT
  hangup [CALL_ID]          the caller hangs up (default: the newest call)
  help                      this text"""


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
        print("  Other clients: trust that CA file (Python's ssl honours SSL_CERT_FILE).")
    print(_CONSOLE_HELP)
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
                print(await _console_command(server, shlex.split(line)), flush=True)
            except (LookupError, ValueError) as exc:
                print(f"error: {exc}", flush=True)


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
        return _CONSOLE_HELP
    raise ValueError(f"unknown command {command!r}; type 'help'")


async def _print_frames(server: FakeRelayServer) -> None:
    """Print one line per frame, as the demo's timeline does (acks left out)."""
    from .testing._demo import _summary

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


async def _run_fake_server(args: argparse.Namespace) -> None:
    from .testing import FakeRelayServer

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


def _fake_server(args: argparse.Namespace) -> int:
    anyio.run(_run_fake_server, args, backend=args.backend)
    return 0


# -- run ---------------------------------------------------------------------------------


def _import_target(module_name: str) -> ModuleType:
    if module_name.endswith(".py") or os.sep in module_name:
        path = Path(module_name).resolve()
        spec = importlib.util.spec_from_file_location(path.stem, path)
        if spec is None or spec.loader is None or not path.is_file():
            raise CliError(f"no Python file at {module_name!r}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[path.stem] = module
        spec.loader.exec_module(module)
        return module
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # as `python -m` does: the app's own directory
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            raise CliError(f"cannot import {module_name!r}: {exc}") from None
        raise


def load_client(target: str) -> RelayClient:
    """The ``RelayClient`` named by ``"module:attribute"`` (``"path/app.py:attr"`` too).

    The attribute defaults to ``client``. It may be a ``RelayClient`` or a function
    taking no arguments that returns one (an app factory).
    """
    module_name, _, attr = target.partition(":")
    if not module_name:
        raise CliError(f"expected module:attribute, got {target!r}")
    module = _import_target(module_name)
    attr = attr or "client"
    try:
        value: Any = getattr(module, attr)
    except AttributeError:
        raise CliError(f"module {module_name!r} has no attribute {attr!r}") from None
    if not isinstance(value, RelayClient) and callable(value):
        value = value()
    if not isinstance(value, RelayClient):
        raise CliError(
            f"{target!r} is a {type(value).__name__}, not a RelayClient or a function returning one"
        )
    return value


async def _drain(client: RelayClient, timeout: float) -> None:
    """Stop taking calls, then wait up to ``timeout`` for the active ones to end."""
    if client.contexts:
        try:
            await client.unreceive(client.contexts)
        except RelayError as exc:
            logger.warning("could not stop receiving: %s", exc)
    if client.active_calls:
        logger.info(
            "draining: waiting up to %g s for %d active call(s)", timeout, client.active_calls
        )
    with anyio.move_on_after(timeout):
        while client.active_calls:  # noqa: ASYNC110 - the count belongs to the client
            await anyio.sleep(0.05)
    if client.active_calls:
        logger.warning("drain timeout: %d call(s) still active", client.active_calls)


async def serve(client: RelayClient, *, drain_timeout: float = 0.0) -> None:
    """Run ``client`` until SIGINT or SIGTERM, then drain and shut it down.

    With ``drain_timeout`` > 0 the client first stops receiving new calls (they go to
    other workers on the same contexts) and waits that long for active calls to end;
    a second signal ends the wait. Calls still being handled are then hung up.
    """
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with client:
            logger.info("serving on contexts %s; SIGINT or SIGTERM stops", client.contexts)
            signum = await anext(signals)
            logger.info("received %s: shutting down", signal.Signals(signum).name)
            if drain_timeout > 0:
                async with anyio.create_task_group() as tg:

                    async def second_signal() -> None:
                        await anext(signals)
                        logger.info("second signal: not waiting for active calls")
                        tg.cancel_scope.cancel()

                    tg.start_soon(second_signal)
                    await _drain(client, drain_timeout)
                    tg.cancel_scope.cancel()


def _run_app(args: argparse.Namespace) -> int:
    client = load_client(args.target)
    try:
        anyio.run(
            functools.partial(serve, client, drain_timeout=args.drain_timeout), backend=args.backend
        )
    except RelayError as exc:
        logger.error("client stopped: %s", exc)
        return 1
    return 0


# -- argument parsing --------------------------------------------------------------------


def _common_options(suppress: bool) -> argparse.ArgumentParser:
    """``--backend`` and ``--log-level``, accepted before and after the subcommand."""
    parser = argparse.ArgumentParser(add_help=False)
    default: Any = argparse.SUPPRESS if suppress else None
    parser.add_argument(
        "--backend",
        choices=["asyncio", "trio"],
        default=default,
        help="event loop to run on (default: asyncio)",
    )
    parser.add_argument(
        "--log-level",
        default=default,
        type=str.upper,
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="logging level; DEBUG shows every frame, secrets masked "
        "(default: INFO for run, WARNING otherwise)",
    )
    return parser


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="relay-anyio",
        description="SignalWire RELAY on anyio (trio and asyncio): a demo, a fake RELAY "
        "server for manual testing, and a runner for your app's client.",
        parents=[_common_options(suppress=False)],
    )
    parser.add_argument("--version", action="version", version=f"relay-anyio {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    common = [_common_options(suppress=True)]

    demo = commands.add_parser(
        "demo",
        parents=common,
        help="run an IVR against an embedded fake server",
        description="Three simulated callers press keys in the guide's IVR, then an SMS "
        "goes out and one comes in; prints every call's timeline of frames. "
        "No account or network needed (this is what `make demo` runs).",
    )
    demo.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="also print each frame in full (credentials masked)",
    )
    demo.set_defaults(func=_demo)

    fake = commands.add_parser(
        "fake-server",
        parents=common,
        help="run the fake RELAY server standalone",
        description="Run relay_anyio's fake RELAY server for manual testing of any RELAY\n"
        "client. It prints the credentials to use, then reads commands from\n"
        "standard input to offer calls and messages.\n\n" + _CONSOLE_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    fake.add_argument("--host", default="127.0.0.1", help="address to listen on")
    fake.add_argument("--port", type=int, default=0, help="port to listen on; 0 picks a free one")
    fake.add_argument(
        "--tls",
        action="store_true",
        help="serve wss:// with a test CA, so programs configured only by "
        "SIGNALWIRE_* variables can connect",
    )
    fake.add_argument(
        "--ca-dir",
        help="with --tls: directory to write fake-relay-ca.pem to (default: a temporary one)",
    )
    fake.add_argument("--project", default="test-project", help="project id clients must send")
    fake.add_argument("--token", default="test-token", help="API token clients must send")
    fake.add_argument(
        "--frames",
        action="store_true",
        help="print a line for every frame exchanged (acks left out)",
    )
    fake.set_defaults(func=_fake_server)

    run = commands.add_parser(
        "run",
        parents=common,
        help="run an app's client: relay-anyio run module:client",
        description="Import MODULE and run its RelayClient with logging configured, until "
        "SIGINT (Ctrl+C) or SIGTERM. Exit status 0 after a clean shutdown, 1 "
        "if the client stopped on an error (e.g. rejected credentials).",
    )
    run.add_argument(
        "target",
        metavar="MODULE[:ATTRIBUTE]",
        help="module (or path/to/file.py) and attribute holding a RelayClient, "
        "or a function returning one (attribute defaults to 'client')",
    )
    run.add_argument(
        "--drain-timeout",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="on SIGINT/SIGTERM stop receiving new calls and let active ones "
        "run up to SECONDS before hanging them up (default: 0)",
    )
    run.set_defaults(func=_run_app)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``relay-anyio`` command; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    args.backend = args.backend or "asyncio"
    level = args.log_level or ("INFO" if args.command == "run" else "WARNING")
    logging.basicConfig(level=level, format=_LOG_FORMAT)
    func = cast(Callable[[argparse.Namespace], int], args.func)
    try:
        return func(args)
    except CliError as exc:
        parser.error(str(exc))
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
