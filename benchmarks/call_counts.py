"""Python function calls per unit of work: a before/after check that load cannot blur.

CPU figures on a shared machine move ±20 % with what else runs; the number of Python
function calls a workload makes does not. This runs ``compare.py``'s W1, W2 and W4 for
relay_anyio under cProfile (``BENCH_PROFILE``), for this checkout and, with
``--against PATH``, for another one (``BENCH_PACKAGE_PATH``, e.g. an ``git archive``
of an older commit), and prints per inbound call / event / round trip:

* every Python-level call the driver process made (the event loop included), and
* the calls into relay_anyio's own functions,

with the difference. The profile covers the whole driver run (connect and teardown
too), so the figures are a little above the per-unit cost of the measured window;
the difference between two checkouts is exact up to that constant. A change that
adds no calls on a path but makes the same calls slower is not seen here: that is
what ``compare.py`` and ``cpu_profile.py`` are for.

Usage::

    python benchmarks/call_counts.py
    git archive 0f72cb3 | tar -x -C /tmp/old
    python benchmarks/call_counts.py --against /tmp/old
"""

from __future__ import annotations

import argparse
import os
import pstats
import subprocess
import sys
import tempfile
from pathlib import Path

import compare


def units(sizes: compare.Sizes) -> dict[str, tuple[int, str]]:
    """Units of each workload in a ``compare.py`` run of these sizes."""
    return {
        "W1": (sizes.w1_calls, "call"),
        "W2": (sizes.w2_events, "event"),
        "W4": (sizes.w4_requests, "round trip"),
    }


BACKENDS = ("asyncio", "trio")


def _counts(profile: Path) -> tuple[int, int]:
    """(all calls, calls into relay_anyio) in one cProfile dump."""
    stats = pstats.Stats(str(profile)).stats  # type: ignore[attr-defined]
    total = own = 0
    for (filename, _line, _name), (_cc, calls, *_rest) in stats.items():
        total += calls
        if "relay_anyio" in filename and "benchmarks" not in filename:
            own += calls
    return total, own


def measure(
    package_path: str | None, workload: str, backend: str, quick: bool = False
) -> tuple[int, int]:
    """Run one workload under cProfile; its call counts."""
    with tempfile.TemporaryDirectory() as directory:
        env = dict(os.environ, BENCH_PROFILE=directory)
        env.pop("BENCH_PACKAGE_PATH", None)
        if package_path:
            env["BENCH_PACKAGE_PATH"] = package_path
        done = subprocess.run(
            [
                sys.executable,
                str(Path(__file__).with_name("compare.py")),
                "--only",
                workload,
                "--clients",
                f"relay_anyio/{backend}",
                "--reps",
                "1",
                *(["--quick"] if quick else []),
            ],
            env=env,
            capture_output=True,
            text=True,
        )
        profile = Path(directory) / f"{workload}-{backend}.prof"
        if not profile.exists():
            raise SystemExit(f"{workload} {backend} failed:\n{done.stdout}\n{done.stderr}")
        if done.returncode != 0:
            # An older checkout may lose events (a count mismatch): its calls still count,
            # and the line says so.
            print(
                f"  ({workload} {backend} {package_path or 'this checkout'}: the run "
                "reported failures or count mismatches)",
                file=sys.stderr,
            )
        return _counts(profile)


def main() -> int:
    """Print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", help="another checkout's root (its relay_anyio package)")
    parser.add_argument("--only", default="W1,W2,W4", help="workloads, e.g. W4")
    parser.add_argument("--quick", action="store_true", help="compare.py's CI sizes")
    args = parser.parse_args()
    table = units(compare.QUICK if args.quick else compare.FULL)
    workloads = [w for w in args.only.split(",") if w in table]
    header = f"{'workload':<6} {'backend':<8} {'unit':<11} {'all calls':>10} {'relay_anyio':>12}"
    if args.against:
        header += f" {'before all':>11} {'before ra':>10} {'diff all':>9} {'diff ra':>8}"
    print(header)
    for workload in workloads:
        count, unit = table[workload]
        for backend in BACKENDS:
            total, own = measure(None, workload, backend, args.quick)
            line = (
                f"{workload:<6} {backend:<8} {unit:<11} {total / count:>10.1f} {own / count:>12.1f}"
            )
            if args.against:
                before_total, before_own = measure(args.against, workload, backend, args.quick)
                line += (
                    f" {before_total / count:>11.1f} {before_own / count:>10.1f}"
                    f" {(total - before_total) / before_total:>+9.1%}"
                    f" {(own - before_own) / before_own:>+8.1%}"
                )
            print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
