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
from typing import Any

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


def _load(path: Path, name: str) -> Any:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    return module


def _w2_reports(compare: Any) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    """A consistent W2 (server, driver) report pair at the quick sizes."""
    sizes = compare.QUICK
    n, e = sizes.w2_calls, sizes.w2_events
    sent = 6 * n + e + 4
    counts = {
        "connects": 1,
        "events_sent": sent + 1,  # the ctl-done's own ack comes after the snapshot
        "acks": sent + 1,
        "blast_sent": e,
        "blast_play": e // 2,
        "blast_state": e // 2,
        "completed": n,
    }
    to_calls = {
        "state:answered": n + e // 2,
        "play:playing": n + e // 4,
        "play:paused": e // 4,
        "play:finished": n,
        "state:ending": n,
        "state:ended": n,
    }
    methods = {
        "signalwire.connect": 1,
        "calling.answer": n,
        "calling.play": n,
        "calling.end": n + 1,
    }
    server = {
        "complete": True,
        "errors": {},
        "unacked": 0,
        "counts": counts,
        "to_calls": to_calls,
        "at_done": {
            "counts": {**counts, "events_sent": sent},
            "methods": {**methods, "signalwire.ping": 2},
            "to_calls": to_calls,
        },
    }
    driver = {
        "ok": True,
        "completed": n,
        "listener_events": e,
        "listener_play": e // 2,
        "listener_state": e // 2,
        "listener_counts": dict(to_calls),
    }
    return sizes, server, driver


def test_count_mismatch_is_reported() -> None:
    """The harness flags a lost ack and a missing listener event, not just crashes."""
    compare = _load(COMPARE, "bench_compare")
    sizes, server, driver = _w2_reports(compare)
    job = compare.JOBS["W2"][0]
    counts = server["counts"]
    assert compare.check(job, driver, server, sizes) == []
    lost = compare.check(
        job,
        {**driver, "listener_events": sizes.w2_events - 1, "listener_state": 499},
        {**server, "unacked": 1, "counts": {**counts, "acks": counts["acks"] - 1}},
        sizes,
    )
    assert len(lost) == 4, lost
    assert all(p.startswith("COUNT MISMATCH") for p in lost)


def test_a_lost_teardown_event_is_reported() -> None:
    """A listener that misses one ``ending`` (not a blast event) fails the run."""
    compare = _load(COMPARE, "bench_compare")
    sizes, server, driver = _w2_reports(compare)
    job = compare.JOBS["W2"][0]
    seen = {**driver["listener_counts"], "state:ending": sizes.w2_calls - 1}
    problems = compare.check(job, {**driver, "listener_counts": seen}, server, sizes)
    assert len(problems) == 1, problems
    assert "every listener event" in problems[0] and "state:ending" in problems[0]


def test_server_totals_are_exact() -> None:
    """An extra event or an unexpected request is a mismatch; keepalive pings are not."""
    compare = _load(COMPARE, "bench_compare")
    sizes, server, driver = _w2_reports(compare)
    job = compare.JOBS["W2"][0]
    done = server["at_done"]
    extra_event = {
        **done,
        "counts": {**done["counts"], "events_sent": 1 + done["counts"]["events_sent"]},
    }
    problems = compare.check(job, driver, {**server, "at_done": extra_event}, sizes)
    assert [p for p in problems if "events sent" in p] == problems and len(problems) == 1
    probe = {**done, "methods": {**done["methods"], "calling.clear_digit_bindings": 1}}
    problems = compare.check(job, driver, {**server, "at_done": probe}, sizes)
    assert len(problems) == 1 and "requests by method" in problems[0], problems
