"""CI-sized run of the client benchmark (``benchmarks/compare.py --quick``), so it cannot rot.

Starts the loopback load server and the limit and relay_anyio (asyncio, trio) drivers
with tiny sizes; every count is checked exactly by compare.py, whose exit status
says whether they all matched. The official SDK is not involved.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

COMPARE = Path(__file__).resolve().parent.parent / "benchmarks" / "compare.py"


@pytest.mark.timeout(180)  # ~5 s idle, 35 s seen on a loaded machine: only a hang fails
def test_benchmark_quick_run() -> None:
    proc = subprocess.run(
        [sys.executable, str(COMPARE), "--quick", "--reps", "1"],
        capture_output=True,
        text=True,
        timeout=150,
        check=False,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-6000:]
    for workload in ("W1", "W2", "W3", "W4"):
        assert f"{workload} " in proc.stdout, f"{workload} missing from the table:\n{output}"
    assert "limit" in proc.stdout and "relay_anyio/trio" in proc.stdout
    assert "all counts matched exactly" in proc.stdout


def test_count_mismatch_is_reported() -> None:
    """The harness flags a lost ack and a missing listener event, not just crashes."""
    spec = importlib.util.spec_from_file_location("bench_compare", COMPARE)
    assert spec is not None and spec.loader is not None
    compare = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = compare  # dataclasses look their module up
    try:
        spec.loader.exec_module(compare)
    finally:
        del sys.modules[spec.name]
    sizes = compare.QUICK
    job = compare.JOBS["W2"][0]
    counts = {
        "connects": 1,
        "events_sent": 1126,
        "acks": 1126,
        "blast_sent": sizes.w2_events,
        "blast_play": 500,
        "blast_state": 500,
        "completed": sizes.w2_calls,
    }
    server = {"complete": True, "errors": {}, "unacked": 0, "counts": counts}
    driver = {
        "ok": True,
        "completed": sizes.w2_calls,
        "listener_events": sizes.w2_events,
        "listener_play": 500,
        "listener_state": 500,
    }
    assert compare.check(job, driver, server, sizes) == []
    lost = compare.check(
        job,
        {**driver, "listener_events": sizes.w2_events - 1, "listener_state": 499},
        {**server, "unacked": 1, "counts": {**counts, "acks": 1125}},
        sizes,
    )
    assert len(lost) == 4, lost
    assert all(p.startswith("COUNT MISMATCH") for p in lost)
