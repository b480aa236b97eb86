"""``relay-anyio``: the demo, a standalone fake server, and a runner for apps."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence
from typing import Any

import anyio

from ._version import __version__

__all__ = ["main"]


def _demo(args: argparse.Namespace) -> int:
    from ._demo import run_demo

    anyio.run(run_demo, args.verbose, backend=args.backend)
    return 0


def _fake_server(args: argparse.Namespace) -> int:
    from .testing import FakeRelayServer

    async def serve() -> None:
        async with FakeRelayServer(host=args.host, port=args.port) as server:
            kwargs = server.client_kwargs()
            print(f"Fake RELAY server listening on {server.url}")
            print(f"  project={kwargs['project']!r} token={kwargs['token']!r}")
            print(f"  RelayClient(project={kwargs['project']!r}, token={kwargs['token']!r}, "
                  f"url={server.url!r}, contexts=['default'])")
            print("Press Ctrl+C to stop.", flush=True)
            await anyio.sleep_forever()

    try:
        anyio.run(serve, backend=args.backend)
    except KeyboardInterrupt:
        pass
    return 0


def _run_app(args: argparse.Namespace) -> int:
    module_name, _, attr = args.target.partition(":")
    sys.path.insert(0, ".")
    module = importlib.import_module(module_name)
    client: Any = getattr(module, attr or "client")
    client.run(backend=args.backend)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="relay-anyio", description="SignalWire RELAY on anyio (trio and asyncio)."
    )
    parser.add_argument("--version", action="version", version=f"relay-anyio {__version__}")
    parser.add_argument(
        "--backend", choices=["asyncio", "trio"], default="asyncio", help="event loop to run on"
    )
    parser.add_argument("--log-level", default="WARNING", help="logging level (DEBUG shows frames)")
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser("demo", help="run an IVR against an embedded fake server")
    demo.add_argument("-v", "--verbose", action="store_true", help="show every frame in full")
    demo.set_defaults(func=_demo)

    fake = commands.add_parser("fake-server", help="run the fake RELAY server standalone")
    fake.add_argument("--host", default="127.0.0.1")
    fake.add_argument("--port", type=int, default=0, help="0 picks a free port")
    fake.set_defaults(func=_fake_server)

    run = commands.add_parser("run", help="run an app's client: relay-anyio run module:client")
    run.add_argument(
        "target", help="module:attribute of a RelayClient (the attribute defaults to 'client')"
    )
    run.set_defaults(func=_run_app)

    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    return int(args.func(args))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
