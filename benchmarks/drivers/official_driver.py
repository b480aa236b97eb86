"""Benchmark driver: SignalWire's official SDK (``signalwire.relay``), on asyncio.

Runs in its own interpreter (``benchmarks/.venv-official``, created by compare.py
with ``pip install signalwire-sdk``); the SDK is never a dependency of relay_anyio.
It executes the same ``bench_handlers.py`` as the relay_anyio driver. TLS trust comes
from ``SIGNALWIRE_RELAY_CA_FILE``. Prints one JSON line (see ``bench_common.Report``).
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import sys

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


def _make_flag() -> Flag:
    return asyncio.Event()


async def _main(cfg: Config) -> Report:
    rt = Runtime(
        client_cls=RelayClient,
        event_call_play=EVENT_CALL_PLAY,
        event_call_state=EVENT_CALL_STATE,
        make_flag=_make_flag,
        sleep=asyncio.sleep,
        wait_flag=_wait_flag,
    )
    report = await run(rt, cfg, "official")
    report.extra["version"] = importlib.metadata.version("signalwire-sdk")
    return report


def main(argv: list[str] | None = None) -> int:
    cfg = parse_args(__doc__ or "", argv)
    report = asyncio.run(_main(cfg))
    report.emit()
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
