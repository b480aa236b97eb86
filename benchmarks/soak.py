"""Soak run: the reliability scenarios of ``tests/stress`` at full size.

    python benchmarks/soak.py                      # 1000 calls / 100 drops + 100k flood,
                                                   # asyncio and trio
    python benchmarks/soak.py --calls 2000 --drops 300 --backend trio --no-flood

Each scenario runs in its own process (so its peak RSS is its own) against the fake
RELAY server over loopback:

* fault: ``--calls`` live calls doing answer / play / play_and_collect / record /
  hang up while the server drops the link at ``--drops`` seeded random frames;
  every event the server sent must reach the calls' listeners once, in order;
* flood: ``--flood`` events for a call whose only listener never returns, while
  another call plays; memory is measured with tracemalloc and RSS.

Prints the figures and exits 1 if any count is off.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def _fault(args: argparse.Namespace) -> bool:
    import anyio

    from tests.stress.scenarios import run_fault_scenario

    async def main() -> bool:
        report = await run_fault_scenario(
            args.calls, args.drops, seed=args.seed, timeout=args.timeout
        )
        print("\n".join(f"  {line}" for line in report.lines()))
        return (
            not report.errors
            and report.drops == args.drops
            and report.handlers_completed == args.calls
            and report.ended_on_server == args.calls
            and report.active_calls_after == 0
            and report.events_delivered == report.events_sent
            and report.duplicates == report.missing == report.calls_out_of_order == 0
            and report.actions_completed == report.actions_started == 3 * args.calls
            and report.unacked_after == 0
        )

    return anyio.run(main, backend=args.backend)


def _flood(args: argparse.Namespace) -> bool:
    import anyio

    from tests.stress.scenarios import run_flood_scenario

    async def main() -> bool:
        report = await run_flood_scenario(args.flood, trace=True, timeout=args.timeout)
        print("\n".join(f"  {line}" for line in report.lines()))
        return (
            report.unacked_after == 0
            and report.connections == 1
            and report.overflow_errors == 1
            and report.other_call_completed
        )

    return anyio.run(main, backend=args.backend)


def _worker(args: argparse.Namespace) -> int:
    import logging

    # Each drop logs a warning and the flood an error: keep the figures readable.
    handler = logging.StreamHandler()
    handler.setLevel(logging.CRITICAL)
    logging.basicConfig(level=logging.CRITICAL, handlers=[handler])
    ok = _fault(args) if args.worker == "fault" else _flood(args)
    return 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--drops", type=int, default=100)
    parser.add_argument("--seed", type=int, default=20240601)
    parser.add_argument("--flood", type=int, default=100_000)
    parser.add_argument("--no-flood", action="store_true")
    parser.add_argument("--backend", choices=["asyncio", "trio", "both"], default="both")
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--worker", choices=["fault", "flood"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return _worker(args)
    backends = ["asyncio", "trio"] if args.backend == "both" else [args.backend]
    scenarios = ["fault"] + ([] if args.no_flood else ["flood"])
    failed = []
    for scenario in scenarios:
        for backend in backends:
            title = (
                f"fault: {args.calls} calls, {args.drops} drops (seed {args.seed})"
                if scenario == "fault"
                else f"flood: {args.flood} events for a call nobody reads"
            )
            print(f"{title} -- {backend}", flush=True)
            command = [
                sys.executable,
                __file__,
                "--worker",
                scenario,
                "--backend",
                backend,
                "--calls",
                str(args.calls),
                "--drops",
                str(args.drops),
                "--seed",
                str(args.seed),
                "--flood",
                str(args.flood),
                "--timeout",
                str(args.timeout),
            ]
            if subprocess.run(command, check=False).returncode != 0:
                failed.append(f"{scenario}/{backend}")
    print("all counts matched exactly" if not failed else f"MISMATCH in {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
