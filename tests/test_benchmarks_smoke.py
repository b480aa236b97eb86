"""CI-sized runs of the client benchmarks (``compare.py`` and ``scale.py``, ``--quick``).

They start the loopback load servers and the limit and relay_anyio (asyncio, trio)
drivers with tiny sizes; every count is checked exactly by the harness, whose exit
status says whether they all matched. No timing is asserted. The official SDK is not
involved. The count checks themselves are tested on synthetic reports, so that a
harness that stopped checking would fail here too.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"
COMPARE = BENCH / "compare.py"
SCALE = BENCH / "scale.py"


def _run_ok(
    script: Path, *args: str, timeout: float
) -> tuple[subprocess.CompletedProcess[str], str]:
    """Run a benchmark script; it must exit 0 (its count checks passed). Also its output."""
    proc = subprocess.run(
        [sys.executable, str(script), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-6000:]
    return proc, output


@pytest.mark.timeout(180)  # ~5 s idle, 35 s seen on a loaded machine: only a hang fails
def test_benchmark_quick_run() -> None:
    proc, output = _run_ok(COMPARE, "--quick", "--reps", "1", timeout=150)
    for workload in ("W1", "W2", "W3", "W4"):
        assert f"{workload} " in proc.stdout, f"{workload} missing from the table:\n{output}"
    assert "limit" in proc.stdout and "relay_anyio/trio" in proc.stdout
    assert "all counts matched exactly" in proc.stdout


def _load(path: Path, name: str) -> Any:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    sys.path.insert(0, str(BENCH))  # scale.py imports compare
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
        sys.path.remove(str(BENCH))
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


@pytest.mark.timeout(240)  # ~20 s idle (two 1 s reconnect backoffs a backend): only a hang fails
def test_scale_sweep_quick_run() -> None:
    """Every job of the sweep at tiny sizes: all counts exact, every client ok."""
    proc, output = _run_ok(SCALE, "--quick", "--reps", "1", timeout=210)
    for job in ("S@1 ", "S@50 ", "R resume", "R fresh", "M "):
        assert job in proc.stdout, f"{job} missing from the table:\n{output}"
    assert "FAIL" not in proc.stdout
    assert "all counts matched exactly" in proc.stdout


def _sweep_reports(scale: Any, job: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """A consistent (server, driver) report pair for one sweep job at the quick sizes."""
    z = scale.QUICK
    events, methods = scale.expected(job, z)
    n = job.calls
    counts: dict[str, Any] = {"events_sent": events + 1, "acks": events + 1}
    driver: dict[str, Any] = {"ok": True, "held": n}
    server: dict[str, Any] = {"complete": True, "errors": {}, "unacked": 0}
    done: dict[str, Any] = {"methods": dict(methods)}
    if job.workload == "R":
        server["resume_requested"] = True
        done["methods"]["calling.clear_digit_bindings"] = n  # probes: counted apart
        counts["probes"] = n
        if job.mode == "resume":
            counts["completed"] = n
            driver.update(completed=n, failed=0)
        else:
            counts["forgotten"] = n
            driver.update(completed=0, failed=n)
    elif job.workload == "S":
        to_calls = {"state:answered": n, "play:playing": n, "play:finished": n, "state:ended": n}
        done["to_calls"] = to_calls
        counts["completed"] = n
        driver.update(
            completed=n, listener_events=z.events, lat_n=z.paced, listener_counts=dict(to_calls)
        )
    elif job.workload == "M":
        counts["messages"] = z.messages
        driver.update(completed=z.messages, delivered=z.messages, completed_callbacks=z.messages)
    server["counts"] = counts
    done["counts"] = {**counts, "events_sent": events}
    server["at_done"] = done
    return server, driver


def test_sweep_checks_are_exact() -> None:
    """A resume that failed one wait, an extra probe, a lost message: each one reported."""
    scale = _load(SCALE, "bench_scale_sweep")
    jobs = {j.name: j for j in scale.jobs_for(scale.QUICK)}
    z = scale.QUICK
    for name in ("S@10", "R resume", "R fresh", "M"):
        server, driver = _sweep_reports(scale, jobs[name])
        assert scale.check(jobs[name], driver, server, z) == [], name

    resume = jobs["R resume"]
    server, driver = _sweep_reports(scale, resume)
    problems = scale.check(resume, {**driver, "failed": 1}, server, z)
    assert len(problems) == 1 and "waits failed" in problems[0], problems
    too_many = {**server, "counts": {**server["counts"], "probes": resume.calls + 1}}
    problems = scale.check(resume, driver, too_many, z)
    assert len(problems) == 1 and "probes" in problems[0], problems
    problems = scale.check(resume, driver, {**server, "resume_requested": False}, z)
    assert len(problems) == 1 and "protocol" in problems[0], problems

    fresh = jobs["R fresh"]
    server, driver = _sweep_reports(scale, fresh)
    problems = scale.check(fresh, {**driver, "failed": fresh.calls - 1}, server, z)
    assert len(problems) == 1 and "waits failed" in problems[0], problems

    held = jobs["S@10"]
    server, driver = _sweep_reports(scale, held)
    seen = {**driver["listener_counts"], "state:ended": held.calls - 1}
    problems = scale.check(held, {**driver, "listener_counts": seen}, server, z)
    assert len(problems) == 1 and "every listener event" in problems[0], problems
    problems = scale.check(held, {**driver, "lat_n": z.paced - 1}, server, z)
    assert len(problems) == 1 and "paced" in problems[0], problems

    messaging = jobs["M"]
    server, driver = _sweep_reports(scale, messaging)
    problems = scale.check(messaging, {**driver, "delivered": z.messages - 1}, server, z)
    assert len(problems) == 1 and "delivered" in problems[0], problems


@pytest.mark.timeout(180)
def test_call_counts_quick_run_prints_calls_per_unit() -> None:
    """``call_counts.py`` profiles a real run and prints per-unit calls for both backends."""
    proc, output = _run_ok(BENCH / "call_counts.py", "--quick", "--only", "W4", timeout=150)
    rows = [line.split() for line in proc.stdout.splitlines() if line.startswith("W4 ")]
    assert [row[1] for row in rows] == ["asyncio", "trio"], output
    for row in rows:
        total, own = float(row[-2]), float(row[-1])
        # A round trip is Python calls into relay_anyio (a request, its response) and
        # more calls in total (the event loop): zero would mean nothing was profiled.
        assert 0 < own < total, output
