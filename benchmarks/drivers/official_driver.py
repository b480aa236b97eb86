"""Benchmark driver: SignalWire's official SDK (``signalwire.relay``), on asyncio.

Runs in its own interpreter (``benchmarks/.venv-official``, created by compare.py
with ``pip install signalwire-sdk``); the SDK is never a dependency of relay_anyio.
It executes the same ``bench_handlers.py`` as the relay_anyio driver. TLS trust comes
from ``SIGNALWIRE_RELAY_CA_FILE``. Prints one JSON line (see ``bench_common.Report``).
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import os
import signal
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

from bench_common import Config, Report, parse_args
from bench_handlers import Flag, Runtime, run
from signalwire.relay import (  # type: ignore[import-not-found]
    EVENT_CALL_PLAY,
    EVENT_CALL_STATE,
    RelayClient,
)


async def _wait_flag(flag: Flag, timeout: float) -> bool:
    try:
        await asyncio.wait_for(flag.wait(), timeout)
    except TimeoutError:
        return False
    return True


async def _gather(funcs: list[Callable[[], Awaitable[Any]]]) -> None:
    await asyncio.gather(*(func() for func in funcs))


def _make_flag() -> Flag:
    return asyncio.Event()


def _runtime() -> Runtime:
    return Runtime(
        client_cls=RelayClient,
        event_call_play=EVENT_CALL_PLAY,
        event_call_state=EVENT_CALL_STATE,
        make_flag=_make_flag,
        sleep=asyncio.sleep,
        wait_flag=_wait_flag,
        gather=_gather,
    )


async def _main(cfg: Config) -> Report:
    report = await run(_runtime(), cfg, "official")
    report.extra["version"] = importlib.metadata.version("signalwire-sdk")
    return report


def _run_blocking(cfg: Config) -> Report:
    """The sweep's R: this SDK reconnects only inside ``client.run()``, which blocks.

    The same handlers run in the loop ``run()`` makes; a watcher thread ends it the
    guide's way, with Ctrl+C (SIGINT), once ``ctl-done`` was handled or on timeout.
    """
    from bench_handlers import CONTEXT, PROJECT, TOKEN
    from bench_scale import ScaleWorkload

    workload = ScaleWorkload(cfg, _runtime(), "official")
    client = RelayClient(
        project=PROJECT, token=TOKEN, host=f"localhost:{cfg.port}", contexts=[CONTEXT]
    )
    client.on_call(workload.on_call)
    workload.client = client
    report = workload.report
    deadline = time.monotonic() + cfg.timeout

    def watch() -> None:
        while not workload.done.is_set() and time.monotonic() < deadline:
            time.sleep(0.02)
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=watch, daemon=True).start()
    try:
        client.run()
    except Exception as exc:
        report.error = f"client raised {exc!r}"[:500]
        return report
    if not workload.done.is_set():
        report.error = f"timeout: no ctl-done within {cfg.timeout:g} s"
    elif report.handler_errors:
        report.error = "handler errors"
    else:
        report.ok = True
    return report


def main(argv: list[str] | None = None) -> int:
    cfg = parse_args(__doc__ or "", argv)
    if cfg.workload == "R":
        report = _run_blocking(cfg)
        report.extra["version"] = importlib.metadata.version("signalwire-sdk")
        report.emit()
        return 0 if report.ok else 1
    report = asyncio.run(_main(cfg))
    report.emit()
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
