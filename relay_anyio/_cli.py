"""``relay-anyio``: the demo, a standalone fake server, and a runner for apps.

``relay-anyio demo``
    What ``make demo`` runs: the guide's IVR against an embedded fake server.
``relay-anyio fake-server [--port N] [--tls]``
    The fake RELAY server on its own, printing the credentials (and, with ``--tls``,
    the ``SIGNALWIRE_*`` variables) a client needs. Lines typed on its standard input
    drive it: ``call CONTEXT [DIGITS]`` offers a call, ``sms CONTEXT TEXT`` delivers a
    message, ``task CONTEXT JSON`` gives a task to one worker, ``hangup`` ends the
    newest call.
``relay-anyio run module:client``
    Runs an app's ``RelayClient`` (or a function returning one) with logging set up,
    until SIGINT or SIGTERM; ``--drain-timeout`` lets active calls finish first,
    ``--health-port`` serves ``/healthz`` and ``/readyz`` for probes.

Every command takes ``--log-level`` and ``--log-format text|json`` (defaults from
``SIGNALWIRE_LOG_LEVEL`` and ``SIGNALWIRE_LOG_FORMAT``).
"""

from __future__ import annotations

import argparse
import functools
import importlib
import importlib.util
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Literal, cast

import anyio
import anyio.from_thread
import anyio.lowlevel

from ._client import RelayClient
from ._errors import RelayError
from ._health import serve_health
from ._logsetup import configure_logging
from ._scopes import owned_task_group
from ._version import __version__

if TYPE_CHECKING:
    pass

__all__ = ["load_client", "main"]

logger = logging.getLogger("relay_anyio.cli")

Backend = Literal["asyncio", "trio"]


class CliError(Exception):
    """A usage problem reported as ``relay-anyio: error: ...`` with exit status 2."""


# -- demo --------------------------------------------------------------------------------


def _demo(args: argparse.Namespace) -> int:
    from .testing._demo import run_demo

    anyio.run(run_demo, args.verbose, backend=args.backend)
    return 0


# -- fake-server -------------------------------------------------------------------------

#: The console's commands (``testing/_console.py`` runs them), also in ``--help``.
CONSOLE_HELP = """\
Commands (type them here, one per line):
  call [CONTEXT] [DIGITS]   offer an inbound call on CONTEXT (default: default);
                            DIGITS answer its next collect, e.g. 'call main-ivr 1'
  sms CONTEXT TEXT...       deliver an inbound SMS on CONTEXT
  task CONTEXT JSON         give a task to one client on CONTEXT, e.g.
                            task office {"job": "print"}
  hangup [CALL_ID]          the caller hangs up (default: the newest call)
  help                      this text"""


def _fake_server(args: argparse.Namespace) -> int:
    from .testing._console import run_fake_server

    anyio.run(run_fake_server, args, backend=args.backend)
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


async def serve(
    client: RelayClient,
    *,
    drain_timeout: float = 0.0,
    health_port: int | None = None,
    health_host: str = "0.0.0.0",
) -> None:
    """Run ``client`` until SIGINT or SIGTERM, then drain and shut it down.

    With ``drain_timeout`` > 0 the client first stops receiving new calls (they go to
    other workers on the same contexts) and waits that long for active calls to end;
    a second signal ends the wait. Calls still being handled are then hung up.
    With ``health_port`` (0 picks a free one) the health endpoint runs from before
    the first connect (``/readyz`` says 503 until connected) to the end.
    """
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        # The body's own exception (rejected credentials) leaves as it is, unwrapped.
        async with owned_task_group() as tg:
            if health_port is not None:
                await tg.start(serve_health, client, health_port, health_host)
            await _serve_until_signal(client, signals, drain_timeout)
            tg.cancel_scope.cancel()


async def _serve_until_signal(
    client: RelayClient, signals: AsyncIterator[signal.Signals], drain_timeout: float
) -> None:
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
            functools.partial(
                serve,
                client,
                drain_timeout=args.drain_timeout,
                health_port=args.health_port,
                health_host=args.health_host,
            ),
            backend=args.backend,
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
        "(default: SIGNALWIRE_LOG_LEVEL, else INFO for run, WARNING otherwise)",
    )
    parser.add_argument(
        "--log-format",
        default=default,
        type=str.lower,
        choices=["text", "json", "console"],
        help="text lines, or one JSON object per line with call_id/control_id "
        "fields (default: SIGNALWIRE_LOG_FORMAT, else text)",
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
        "standard input to offer calls and messages.\n\n" + CONSOLE_HELP,
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
    run.add_argument(
        "--health-port",
        type=_port,
        default=None,
        metavar="PORT",
        help="serve GET /healthz (200 while running) and /readyz (200 when "
        "connected, else 503) as JSON on PORT; 0 picks a free one (logged)",
    )
    run.add_argument(
        "--health-host",
        default="0.0.0.0",
        metavar="ADDRESS",
        help="address the health endpoint listens on (default: 0.0.0.0, all interfaces)",
    )
    run.set_defaults(func=_run_app)
    return parser


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port must be 0-65535, got {port}")
    return port


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``relay-anyio`` command; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    args.backend = args.backend or "asyncio"
    default_level = "INFO" if args.command == "run" else "WARNING"
    level = args.log_level or os.environ.get("SIGNALWIRE_LOG_LEVEL", "").strip() or default_level
    try:
        configure_logging(level, args.log_format)
    except ValueError as exc:
        parser.error(str(exc))
    func = cast(Callable[[argparse.Namespace], int], args.func)
    try:
        return func(args)
    except CliError as exc:
        parser.error(str(exc))
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
