"""Benchmark driver: relay_anyio, on asyncio or trio (``--backend``).

Runs the shared handler code of ``bench_handlers.py`` with relay_anyio's
``RelayClient``. TLS goes through the production path: ``host="localhost:PORT"``
(so ``wss://``) and the benchmark CA from ``SIGNALWIRE_RELAY_CA_FILE``.
Prints one JSON line (see ``bench_common.Report``).
"""

from __future__ import annotations

import cProfile
import os
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
from bench_common import Config, Report, parse_args
from bench_handlers import Flag, Runtime, run

import relay_anyio
from relay_anyio import EVENT_CALL_PLAY, EVENT_CALL_STATE, RelayClient


async def _wait_flag(flag: Flag, timeout: float) -> bool:
    with anyio.move_on_after(timeout):
        await flag.wait()
        return True
    return False


async def _call(func: Callable[[], Awaitable[Any]]) -> None:
    await func()


async def _gather(funcs: list[Callable[[], Awaitable[Any]]]) -> None:
    async with anyio.create_task_group() as tg:
        for func in funcs:
            tg.start_soon(_call, func)


def _make_flag() -> Flag:
    return anyio.Event()


async def _main(cfg: Config) -> Report:
    rt = Runtime(
        client_cls=RelayClient,
        event_call_play=EVENT_CALL_PLAY,
        event_call_state=EVENT_CALL_STATE,
        make_flag=_make_flag,
        sleep=anyio.sleep,
        wait_flag=_wait_flag,
        gather=_gather,
    )
    report = await run(rt, cfg, f"relay_anyio/{cfg.backend}")
    report.extra["version"] = relay_anyio.__version__
    return report


def main(argv: list[str] | None = None) -> int:
    """Run one workload; with ``BENCH_PROFILE=DIR`` also write a cProfile of it there."""
    cfg = parse_args(__doc__ or "", argv)
    profile_dir = os.environ.get("BENCH_PROFILE")
    profiler = cProfile.Profile() if profile_dir else None
    if profiler is not None:
        profiler.enable()
    report: Any = anyio.run(_main, cfg, backend=cfg.backend)
    if profiler is not None and profile_dir:
        profiler.disable()
        os.makedirs(profile_dir, exist_ok=True)
        profiler.dump_stats(os.path.join(profile_dir, f"{cfg.workload}-{cfg.backend}.prof"))
    assert isinstance(report, Report)
    report.emit()
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
