"""Compare RELAY clients on one machine: relay_anyio (asyncio, trio), the official SDK
and the limit (the same frames with the least code possible).

Every run is two fresh processes on loopback: ``loadserver.py`` (TLS, its CPU share
reported) and one driver (``drivers/*_driver.py``). The SDK drivers execute the same
handler module (``drivers/bench_handlers.py``), written only against the guide's API.
Runs are interleaved (for each repetition, for each workload, every client in turn,
the order rotating per repetition) and repeated; the table gives the median and the
min..max of the repetitions, and every SDK figure as a ratio to the limit.

Workloads (full sizes; ``--quick`` shrinks them for CI):

* W1  inbound call throughput: 5000 calls, 100 at a time; answer -> play TTS ->
  ``action.wait()`` -> hangup. Client CPU ms/call, calls/s, p50/p99 receive->hangup
  latency (measured by the server: offer written -> ``calling.end`` read).
* W2  event demux: 1000 live calls with ``call.on(EVENT_CALL_PLAY/STATE)``
  listeners, 100 000 non-terminal events round-robin. Events/s and client CPU
  us/event, from the first to the last event seen by a listener.
* W3  memory: 1000 answered calls waiting in ``action.wait()``. RSS per held call
  (one run), Python heap per held call with tracemalloc (a second run, ``W3h``), what
  is left after release (heap bytes, ``Call`` objects alive).
* W4  request round trip: 5000 sequential ``await action.volume(x)`` on one call.
  p50/p99 us and client CPU us/request.

Every count is checked exactly (calls completed == N, events acked == sent, listener
events == events sent, ...). A mismatch, a failed or timed-out run is reported
loudly and makes the exit status 1. The official SDK lives in its own virtualenv
(``benchmarks/.venv-official``, created on first use with ``pip install
signalwire-sdk``); if that fails its column shows "n/a" with the reason.

Usage::

    python benchmarks/compare.py                  # full run, 3 repetitions
    python benchmarks/compare.py --quick --reps 1 # CI smoke run (no official SDK)
    python benchmarks/compare.py --only W2,W4 --clients limit,relay_anyio/trio
    BENCH_PACKAGE_PATH=/tmp/old python benchmarks/compare.py  # another checkout's package
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import select
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
DRIVERS = BENCH_DIR / "drivers"
LOADSERVER = BENCH_DIR / "loadserver.py"
OFFICIAL_VENV = BENCH_DIR / ".venv-official"
#: ``BENCH_PACKAGE_PATH=/path/to/other/checkout``: the relay_anyio drivers import the
#: package from there instead (before/after figures of a change, same harness).
PACKAGE_PATH = os.environ.get("BENCH_PACKAGE_PATH", "")
OFFICIAL_SPEC = os.environ.get("BENCH_OFFICIAL_SPEC", "signalwire-sdk")
CLIENT_NAMES = ("limit", "relay_anyio/asyncio", "relay_anyio/trio", "official")
WORKLOADS = ("W1", "W2", "W3", "W4")


@dataclass(frozen=True)
class Sizes:
    w1_calls: int
    w1_concurrency: int
    w2_calls: int
    w2_events: int
    w3_calls: int
    w4_requests: int
    timeout: float  # per run, for the driver; the harness kills it a bit later


FULL = Sizes(5000, 100, 1000, 100_000, 1000, 5000, timeout=90.0)
QUICK = Sizes(50, 10, 20, 1000, 20, 100, timeout=20.0)


@dataclass(frozen=True)
class Job:
    """One kind of run: a workload, plus W3's second (tracemalloc) variant."""

    name: str  # W1, W2, W3, W3h, W4
    workload: str
    heap: bool = False

    def server_args(self, z: Sizes) -> list[str]:
        w = self.workload
        if w == "W1":
            return ["--calls", str(z.w1_calls), "--concurrency", str(z.w1_concurrency)]
        if w == "W2":
            return ["--calls", str(z.w2_calls), "--events", str(z.w2_events)]
        if w == "W3":
            return ["--calls", str(z.w3_calls)]
        return ["--requests", str(z.w4_requests)]

    def driver_args(self, z: Sizes) -> list[str]:
        args = self.server_args(z)
        if "--concurrency" in args:
            args = args[:2]
        return [*args, "--heap"] if self.heap else args


JOBS = {
    "W1": [Job("W1", "W1")],
    "W2": [Job("W2", "W2")],
    "W3": [Job("W3", "W3"), Job("W3h", "W3", heap=True)],
    "W4": [Job("W4", "W4")],
}


@dataclass
class Client:
    name: str
    command: list[str]  # interpreter + driver script + fixed args
    unavailable: str = ""  # non-empty: "n/a" with this reason


@dataclass
class Run:
    client: str
    job: str
    rep: int
    driver: dict[str, Any] = field(default_factory=dict)
    server: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    stderr_tail: str = ""
    seconds: float = 0.0
    load: float = 0.0  # the 1-minute load average just before the run

    @property
    def ok(self) -> bool:
        return not self.problems


# -- metrics -------------------------------------------------------------------------


@dataclass(frozen=True)
class Metric:
    job: str
    label: str
    kind: str  # "cost" (lower is better), "rate" (higher is better), "info" (no ratio)
    value: Callable[[dict[str, Any], dict[str, Any], Sizes], float]


def _per(num: float, den: float) -> float:
    return num / den if den else float("nan")


METRICS = [
    Metric(
        "W1",
        "W1 client CPU ms/call",
        "cost",
        lambda d, s, z: _per(d["run_cpu_s"] * 1e3, z.w1_calls),
    ),
    Metric("W1", "W1 calls/s", "rate", lambda d, s, z: _per(z.w1_calls, d["run_wall_s"])),
    Metric("W1", "W1 p50 receive->hangup ms", "cost", lambda d, s, z: s["latency_p50_ms"]),
    Metric("W1", "W1 p99 receive->hangup ms", "cost", lambda d, s, z: s["latency_p99_ms"]),
    Metric("W2", "W2 events/s", "rate", lambda d, s, z: _per(z.w2_events, d["window_wall_s"])),
    Metric(
        "W2",
        "W2 client CPU us/event",
        "cost",
        lambda d, s, z: _per(d["window_cpu_s"] * 1e6, z.w2_events),
    ),
    Metric(
        "W3",
        "W3 RSS KiB/held call",
        "cost",
        lambda d, s, z: _per((d["rss_hold"] - d["rss_base"]) / 1024, z.w3_calls),
    ),
    Metric(
        "W3h",
        "W3 heap KiB/held call",
        "cost",
        lambda d, s, z: _per((d["heap_hold"] - d["heap_base"]) / 1024, z.w3_calls),
    ),
    Metric(
        "W3h",
        "W3 heap left after release KiB",
        "info",
        lambda d, s, z: (d["heap_after"] - d["heap_base"]) / 1024,
    ),
    Metric("W3h", "W3 Call objects left", "info", lambda d, s, z: float(d["calls_alive_after"])),
    Metric("W4", "W4 volume() p50 us", "cost", lambda d, s, z: d["rtt_p50_us"]),
    Metric("W4", "W4 volume() p99 us", "cost", lambda d, s, z: d["rtt_p99_us"]),
    Metric(
        "W4",
        "W4 client CPU us/request",
        "cost",
        lambda d, s, z: _per(d["window_cpu_s"] * 1e6, z.w4_requests),
    ),
]
SERVER_SHARE_JOBS = ("W1", "W2", "W3", "W4")


def _client_share(cpu_key: str, wall_key: str) -> Callable[[Run], float]:
    return lambda r: _per(r.driver[cpu_key] * 100.0, r.driver[wall_key])


#: How busy the client was over the measured window: ~100 % means it set the pace.
CLIENT_SHARE: dict[str, Callable[[Run], float]] = {
    "W1": _client_share("run_cpu_s", "run_wall_s"),
    "W2": _client_share("window_cpu_s", "window_wall_s"),
    "W4": _client_share("window_cpu_s", "window_wall_s"),
}


def server_share(s: dict[str, Any]) -> float:
    """The load server's CPU time over the workload window, in % of one core."""
    return _per(s["cpu_s"] * 100.0, s["wall_s"])


# -- count checks --------------------------------------------------------------------

#: Events the server sends per workload call: the offer, answered, the play's playing
#: and finished, ending and ended.
EVENTS_PER_CALL = 6
#: ctl-start (offer, ending, ended) and ctl-done's offer; W3 adds ctl-hold (3 more).
CONTROL_EVENTS = 4


def expected_at_done(workload: str, z: Sizes) -> tuple[int, dict[str, int]]:
    """(events sent, requests by method) when the workload completed, exactly.

    ``signalwire.ping`` is left out (the keepalive may or may not fire in a run).
    """
    if workload == "W4":
        calls, extra_events = 1, 0
    else:
        calls = {"W1": z.w1_calls, "W2": z.w2_calls, "W3": z.w3_calls}[workload]
        extra_events = z.w2_events if workload == "W2" else 0
    controls = 2 if workload == "W3" else 1  # the hung-up control calls
    events = EVENTS_PER_CALL * calls + extra_events + CONTROL_EVENTS + 3 * (controls - 1)
    methods = {
        "signalwire.connect": 1,
        "calling.answer": calls,
        "calling.play": calls,
        "calling.end": calls + controls,
    }
    if workload == "W4":
        methods["calling.play.volume"] = z.w4_requests
    return events, methods


def check_server_totals(
    workload: str, s: dict[str, Any], z: Sizes, expect: Callable[[str, Any, Any], None]
) -> None:
    """The server's own exact counts at completion: events sent, requests by method."""
    done = s.get("at_done") or {}
    events, methods = expected_at_done(workload, z)
    expect("server: events sent", done.get("counts", {}).get("events_sent"), events)
    got = {m: n for m, n in (done.get("methods") or {}).items() if m != "signalwire.ping"}
    expect("server: requests by method", got, methods)


def check(job: Job, d: dict[str, Any], s: dict[str, Any], z: Sizes) -> list[str]:
    """Every count, exactly. Returns the problems (empty: all good)."""
    problems: list[str] = []

    def expect(what: str, got: Any, want: Any) -> None:
        if got != want:
            problems.append(f"COUNT MISMATCH {what}: got {got!r}, expected {want!r}")

    if not d:
        problems.append("driver printed no report")
    elif not d.get("ok"):
        problems.append(f"driver failed: {d.get('error')} {d.get('handler_errors') or ''}".strip())
    if not s:
        problems.append("load server printed no report")
        return problems
    if s.get("deadline_hit"):
        problems.append("load server deadline hit")
    if not s.get("complete"):
        problems.append(f"load server: workload incomplete, counts={s.get('counts')}")
    if s.get("errors"):
        problems.append(f"load server errors {s['errors']}: {s.get('error_samples')}")
    c = s.get("counts", {})
    expect("server: connects", c.get("connects"), 1)
    expect("server: events acked == events sent", c.get("acks"), c.get("events_sent"))
    expect("server: events never acked", s.get("unacked"), 0)
    w = job.workload
    if s.get("complete"):
        check_server_totals(w, s, z, expect)
    if not d:
        return problems
    if w == "W1":
        n = z.w1_calls
        expect("server: calls offered", c.get("offered"), n)
        expect("server: calls completed (answer, play, end)", c.get("completed"), n)
        expect("server: latency samples", s.get("latency_n"), n)
        expect("driver: handlers completed", d.get("completed"), n)
    elif w == "W2":
        n, e = z.w2_calls, z.w2_events
        expect("server: blast events sent", c.get("blast_sent"), e)
        expect("server: calls completed", c.get("completed"), n)
        expect("driver: handlers completed", d.get("completed"), n)
        expect("driver: listener events", d.get("listener_events"), e)
        expect("driver: play listener events", d.get("listener_play"), c.get("blast_play"))
        expect("driver: state listener events", d.get("listener_state"), c.get("blast_state"))
        # Every event sent to a listened call, teardown (finished, ending, ended) included.
        sent = (s.get("at_done") or {}).get("to_calls") or s.get("to_calls")
        expect("driver: every listener event, by type:state", d.get("listener_counts"), sent)
        expect("server: ended events sent to the calls", (sent or {}).get("state:ended"), n)
    elif w == "W3":
        n = z.w3_calls
        expect("server: plays held", c.get("held"), n)
        expect("server: calls completed", c.get("completed"), n)
        expect("driver: calls in action.wait() at the sample", d.get("held"), n)
        expect("driver: handlers completed", d.get("completed"), n)
        expect("driver: Call objects alive after release", d.get("calls_alive_after"), 0)
    else:
        r = z.w4_requests
        expect("server: volume requests", c.get("volumes"), r)
        expect("server: calls completed", c.get("completed"), 1)
        expect("driver: round trips timed", d.get("rtt_n"), r)
        expect("driver: handlers completed", d.get("completed"), 1)
    return problems


# -- processes -----------------------------------------------------------------------


def _last_json(text: str) -> dict[str, Any]:
    for line in reversed(text.splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                value = json.loads(line)
            except ValueError:
                continue
            if isinstance(value, dict):
                return value
    return {}


def _read_line(proc: subprocess.Popen[bytes], timeout: float) -> tuple[bytes, bytes]:
    """Read the first line of proc's stdout (without Python buffering); (line, rest)."""
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    data = b""
    deadline = time.monotonic() + timeout
    while b"\n" not in data:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            break
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        data += chunk
    line, _, rest = data.partition(b"\n")
    return line, rest


def _tail(text: bytes, lines: int = 12) -> str:
    return "\n".join(text.decode("utf-8", "replace").splitlines()[-lines:])


def run_one(client: Client, job: Job, rep: int, z: Sizes, certs: dict[str, str]) -> Run:
    run = Run(client=client.name, job=job.name, rep=rep)
    run_pair(
        run,
        client,
        [str(LOADSERVER), "--workload", job.workload, *job.server_args(z)],
        ["--workload", job.workload, *job.driver_args(z)],
        z.timeout,
        certs,
    )
    run.problems.extend(check(job, run.driver, run.server, z))
    return run


def run_pair(
    run: Run,
    client: Client,
    server_args: list[str],
    driver_args: list[str],
    timeout: float,
    certs: dict[str, str],
    max_calls: int = 5000,
) -> None:
    """One load server and one driver: fill ``run`` with their reports and problems.

    ``server_args`` starts with the server script; the count checks are the caller's
    (``run.problems`` gets only what went wrong with the processes).
    """
    t0 = time.perf_counter()
    server = subprocess.Popen(
        [
            sys.executable,
            server_args[0],
            "--cert",
            certs["cert"],
            "--key",
            certs["key"],
            "--deadline",
            str(timeout + 20),
            *server_args[1:],
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        first, rest = _read_line(server, 15.0)
        try:
            port = int(json.loads(first)["port"])
        except (ValueError, KeyError):
            server.kill()
            _, err = server.communicate()
            run.problems.append(f"load server did not start: {first!r} {_tail(err)}")
            return
        env = dict(os.environ)
        env["SIGNALWIRE_RELAY_CA_FILE"] = certs["ca"]
        env["RELAY_MAX_ACTIVE_CALLS"] = str(max_calls)
        env.pop("PYTHONPATH", None)
        if PACKAGE_PATH and client.name.startswith("relay_anyio"):
            env["PYTHONPATH"] = PACKAGE_PATH  # an A/B of another checkout's package
        driver = subprocess.Popen(
            [*client.command, "--port", str(port), "--timeout", str(timeout), *driver_args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd=str(DRIVERS),
        )
        try:
            d_out, d_err = driver.communicate(timeout=timeout + 15)
        except subprocess.TimeoutExpired:
            driver.kill()
            d_out, d_err = driver.communicate()
            run.problems.append(f"driver killed: no exit within {timeout + 15:g} s")
        try:
            s_out, s_err = server.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            s_out, s_err = server.communicate()
            run.problems.append("load server killed: no exit 15 s after the driver")
    finally:
        if server.poll() is None:
            server.kill()
            server.communicate()
    run.driver = _last_json(d_out.decode("utf-8", "replace"))
    run.server = _last_json((rest + s_out).decode("utf-8", "replace"))
    run.stderr_tail = (
        f"driver exit {driver.returncode}, stderr:\n{_tail(d_err)}\n"
        f"server stderr:\n{_tail(s_err, 6)}"
    )
    run.seconds = time.perf_counter() - t0


# -- setup ---------------------------------------------------------------------------


def make_certs(directory: Path) -> dict[str, str]:
    import trustme

    ca = trustme.CA()
    cert = ca.issue_cert("localhost", "127.0.0.1", "::1")
    paths = {name: directory / f"{name}.pem" for name in ("ca", "cert", "key")}
    ca.cert_pem.write_to_path(str(paths["ca"]))
    cert.private_key_pem.write_to_path(str(paths["key"]))
    cert.cert_chain_pems[0].write_to_path(str(paths["cert"]))
    for pem in cert.cert_chain_pems[1:]:
        pem.write_to_path(str(paths["cert"]), append=True)
    return {k: str(v) for k, v in paths.items()}


def ensure_official() -> tuple[str, str]:
    """(python of the official venv, "") or ("", reason it is unavailable)."""
    python = OFFICIAL_VENV / "bin" / "python"
    probe = [str(python), "-c", "import signalwire.relay"]

    def works() -> bool:
        return python.exists() and subprocess.run(probe, capture_output=True).returncode == 0

    if works():
        return str(python), ""
    print(f"creating {OFFICIAL_VENV} (pip install {OFFICIAL_SPEC}) ...", flush=True)
    base = shutil.which("python3") or sys.executable
    try:
        subprocess.run(
            [base, "-m", "venv", str(OFFICIAL_VENV)], check=True, capture_output=True, timeout=120
        )
        pip = subprocess.run(
            [
                str(python),
                "-m",
                "pip",
                "install",
                "-q",
                "--disable-pip-version-check",
                OFFICIAL_SPEC,
            ],
            capture_output=True,
            timeout=900,
            text=True,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return "", f"venv creation failed: {exc}"
    if pip.returncode != 0:
        lines = [ln for ln in (pip.stderr or pip.stdout).splitlines() if ln.strip()]
        return "", f"pip install {OFFICIAL_SPEC} failed: {' | '.join(lines[-3:])[:300]}"
    if not works():
        return "", "signalwire.relay is not importable after the install"
    return str(python), ""


def calibrate() -> float:
    """CPU ms of a fixed pure-Python loop (2M additions), best of 3: the machine's speed now.

    The load average does not see a slow host (a VM's neighbours, its clock); this
    does, so figures of runs on different days can be put side by side. Printed
    with every run (on the 2-core dev VM, 2026-12-03: ~80 ms).
    """
    best = float("inf")
    for _ in range(3):
        t0 = time.process_time()
        total = 0
        for i in range(2_000_000):
            total += i
        best = min(best, time.process_time() - t0)
    return best * 1000.0


def machine_info() -> dict[str, str]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "date": datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "nproc": str(
            len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        ),
        "cpu": model or platform.processor() or "unknown",
        "python": platform.python_version(),
        "platform": platform.platform(),
        "calibration_ms": f"{calibrate():.0f}",
        "load": f"{os.getloadavg()[0]:.2f}",
    }


# -- the table -----------------------------------------------------------------------


def _fmt(value: float) -> str:
    if value != value:  # nan
        return "nan"
    a = abs(value)
    if a >= 100_000:
        return f"{value / 1000:.0f}k"
    if a >= 10_000:
        return f"{value / 1000:.1f}k"
    if a >= 100:
        return f"{value:.0f}"
    if a >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def _cell(values: list[float]) -> str:
    if not values:
        return ""
    med = statistics.median(values)
    if len(values) == 1:
        return _fmt(med)
    return f"{_fmt(med)} ({_fmt(min(values))}..{_fmt(max(values))})"


def build_table(
    runs: list[Run], clients: list[Client], jobs: list[Job], z: Sizes
) -> tuple[list[str], list[list[str]]]:
    job_names = {j.name for j in jobs}
    names = [c.name for c in clients]
    by_key: dict[tuple[str, str], list[Run]] = {}
    for r in runs:
        by_key.setdefault((r.client, r.job), []).append(r)

    def values(client: Client, job: str, fn: Callable[[Run], float]) -> list[float] | str:
        if client.unavailable:
            return "n/a"
        rs = by_key.get((client.name, job), [])
        if not rs:
            return ""
        if any(not r.ok for r in rs):
            return "FAIL"
        return [fn(r) for r in rs]

    ratio_clients = [c for c in clients if c.name != "limit"] if "limit" in names else []
    short = {"relay_anyio/asyncio": "asyncio", "relay_anyio/trio": "trio"}
    header = ["metric", *names, *(f"ratio {short.get(c.name, c.name)}" for c in ratio_clients)]
    rows: list[list[str]] = []
    rows_spec: list[tuple[str, str, str, Callable[[Run], float]]] = []

    def metric_of(m: Metric) -> Callable[[Run], float]:
        return lambda r: m.value(r.driver, r.server, z)

    for m in METRICS:
        if m.job in job_names:
            rows_spec.append((m.label, m.job, m.kind, metric_of(m)))
    for job, fn in CLIENT_SHARE.items():
        if job in job_names:
            rows_spec.append((f"{job} client CPU % of a core", job, "info", fn))
    for job in SERVER_SHARE_JOBS:
        if job in job_names:
            rows_spec.append(
                (
                    f"{job} load server CPU % of a core",
                    job,
                    "info",
                    lambda r: server_share(r.server),
                )
            )
    for label, job, kind, fn in rows_spec:
        cells: list[str] = [label]
        medians: dict[str, float] = {}
        for c in clients:
            v = values(c, job, fn)
            if isinstance(v, str):
                cells.append(v)
            else:
                cells.append(_cell(v))
                medians[c.name] = statistics.median(v)
        for c in ratio_clients:
            lim, val = medians.get("limit"), medians.get(c.name)
            if kind == "info" or lim is None or val is None or not lim or not val:
                cells.append("-" if c.unavailable == "" else "n/a")
            elif kind == "cost":
                cells.append(f"{val / lim:.1f}x")
            else:
                cells.append(f"{lim / val:.1f}x")
        rows.append(cells)
    return header, rows


def _short_site(site: str) -> str:
    """A tracemalloc line with the path shortened to what identifies the code."""
    path, sep, rest = site.partition(": size=")
    for marker in ("site-packages/", "/relay_anyio/", "/benchmarks/", "/lib/python3"):
        if marker in path:
            path = path[path.index(marker) :].lstrip("/")
            break
    return f"{path}{sep}{rest}"


def render(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "  ".join(
            c.ljust(widths[i]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(cells)
        ).rstrip()

    sep = "  ".join("-" * w for w in widths)
    return "\n".join([line(header), sep, *(line(r) for r in rows)])


# -- main ----------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="tiny sizes for CI (skips the official SDK unless --with-official)",
    )
    parser.add_argument(
        "--with-official", action="store_true", help="include the official SDK in a --quick run"
    )
    parser.add_argument("--reps", type=int, default=3, help="repetitions (default 3)")
    parser.add_argument("--only", default="", help="workloads, e.g. W1,W4 (default all)")
    parser.add_argument(
        "--clients", default="", help=f"comma-separated subset of {','.join(CLIENT_NAMES)}"
    )
    parser.add_argument("--json", default="", help="also write every run's raw reports here")
    args = parser.parse_args(argv)

    sizes = QUICK if args.quick else FULL
    workloads = [w.strip().upper() for w in args.only.split(",") if w.strip()] or list(WORKLOADS)
    bad = [w for w in workloads if w not in JOBS]
    if bad:
        parser.error(f"unknown workload(s) {bad}: choose from {','.join(WORKLOADS)}")
    jobs = [j for w in WORKLOADS if w in workloads for j in JOBS[w]]
    wanted = [c.strip() for c in args.clients.split(",") if c.strip()]
    if not wanted:
        wanted = [
            c for c in CLIENT_NAMES if c != "official" or not args.quick or args.with_official
        ]
    unknown = [c for c in wanted if c not in CLIENT_NAMES]
    if unknown:
        parser.error(f"unknown client(s) {unknown}: choose from {','.join(CLIENT_NAMES)}")
    if args.reps < 1:
        parser.error("--reps must be at least 1")

    started = time.perf_counter()
    clients: list[Client] = []
    for name in CLIENT_NAMES:
        if name not in wanted:
            continue
        if name == "limit":
            clients.append(Client(name, [sys.executable, str(DRIVERS / "limit_driver.py")]))
        elif name.startswith("relay_anyio/"):
            backend = name.split("/", 1)[1]
            clients.append(
                Client(
                    name,
                    [sys.executable, str(DRIVERS / "relay_anyio_driver.py"), "--backend", backend],
                )
            )
        else:
            python, reason = ensure_official()
            clients.append(Client(name, [python, str(DRIVERS / "official_driver.py")], reason))

    info = machine_info()
    runs: list[Run] = []
    with tempfile.TemporaryDirectory(prefix="relay-bench-") as tmp:
        certs = make_certs(Path(tmp))
        active = [c for c in clients if not c.unavailable]
        for rep in range(args.reps):
            shift = rep % len(active) if active else 0
            order = active[shift:] + active[:shift]
            for job in jobs:
                for client in order:
                    run = run_one(client, job, rep, sizes, certs)
                    runs.append(run)
                    status = "ok" if run.ok else "FAILED"
                    print(
                        f"  rep {rep + 1}/{args.reps} {job.name:<3} {client.name:<20} "
                        f"{status} ({run.seconds:.1f} s)",
                        flush=True,
                    )
                    if not run.ok:
                        for problem in run.problems:
                            print(f"    !! {problem}", flush=True)

    header, rows = build_table(runs, clients, jobs, sizes)
    versions = {}
    for r in runs:
        v = r.driver.get("extra", {}).get("version")
        if v:
            versions[r.client] = v
    print()
    print(
        f"RELAY client benchmark  {info['date']}  nproc={info['nproc']}  cpu={info['cpu']}  "
        f"python={info['python']}  load at start {info['load']}  "
        f"calibration {info['calibration_ms']} ms CPU (2M-step Python loop)"
    )
    print(
        f"sizes: W1 {sizes.w1_calls} calls @ {sizes.w1_concurrency}; W2 {sizes.w2_events} "
        f"events over {sizes.w2_calls} calls; W3 {sizes.w3_calls} held calls; "
        f"W4 {sizes.w4_requests} requests; {args.reps} rep(s), median (min..max)"
    )
    codec = next((r.server.get("codec") for r in runs if r.server.get("codec")), "?")
    limit_codec = next(
        (r.driver["extra"]["codec"] for r in runs if r.driver.get("extra", {}).get("codec")), "?"
    )
    print(f"versions: {versions}  JSON codec: load server {codec}, limit {limit_codec}")
    print(
        "ratio = client / limit for costs, limit / client for rates (1.0x = as fast as the limit)"
    )
    print()
    print(render(header, rows))

    for c in clients:
        if c.unavailable:
            print(f"\n{c.name}: n/a -- {c.unavailable}")
    heap_notes = [r for r in runs if r.job == "W3h" and r.ok and r.rep == args.reps - 1]
    for key, title in (
        ("heap_hold_top", "W3 heap while held: largest allocation sites"),
        ("heap_left_top", "W3 heap left after release: largest growth sites"),
    ):
        if heap_notes:
            print(f"\n{title} (last repetition, tracemalloc):")
        for r in heap_notes:
            for site in r.driver.get("extra", {}).get(key, [])[:3]:
                print(f"  {r.client:<20} {_short_site(site)}")

    failed = [r for r in runs if not r.ok]
    if failed:
        print(f"\n{'!' * 72}\n{len(failed)} run(s) FAILED or had COUNT MISMATCHES:")
        for r in failed:
            print(f"\n[{r.client} {r.job} rep {r.rep + 1}]")
            for problem in r.problems:
                print(f"  - {problem}")
            if r.stderr_tail:
                print("  " + r.stderr_tail.replace("\n", "\n  "))
        print("!" * 72)
    else:
        print("\nall counts matched exactly (every call completed, every event acked and seen)")
    elapsed = time.perf_counter() - started
    print(f"total time {elapsed:.0f} s")

    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "machine": info,
                    "sizes": sizes.__dict__,
                    "reps": args.reps,
                    "clients": {c.name: c.unavailable or "ok" for c in clients},
                    "runs": [r.__dict__ for r in runs],
                    "table": [header, *rows],
                },
                indent=1,
            )
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
