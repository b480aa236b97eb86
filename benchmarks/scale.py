"""Scale sweep: how relay_anyio's costs grow with live calls, resumes and messages.

Same harness as ``compare.py`` (two fresh processes over TLS on loopback, the same
drivers and clients, every count checked exactly), other workloads
(``loadserver_scale.py``, ``drivers/bench_scale.py``, ``drivers/limit_scale.py``):

* ``S@L`` for L in 1, 100, 1000, 10 000 live calls in one process, each with play and
  state listeners and held in ``action.wait()``: RSS per held call (L >= 100); a blast
  of events round-robin over the calls: events/s and client CPU per event; then
  paced events (a fixed rate the slowest client sustains) stamped by the server with
  CLOCK_MONOTONIC: p50/p99 latency from the server's write to the listener.
* ``R resume``: 1000 live calls; the server drops the TCP link; the client
  reconnects and resumes; the session is "fully resumed" once every call got its
  play's ``finished`` on the new link and hung up (relay_anyio also rechecks each
  live call with a probe; those are counted). Times: drop -> reconnect (the
  client's backoff), reconnect -> fully resumed; client CPU drop -> resumed.
* ``R fresh``: the same, but the server refuses the resume (a new protocol): every
  one of the 1000 waits must fail. Time from the reconnect to the last failed wait.
* ``M``: 10 000 ``send_message`` in flight at once, each answered and followed by
  its ``initiated``/``sent``/``delivered`` events in the same write: messages/s and
  client CPU per message.

Interleaved (per repetition, per job, every client in turn, the order rotating),
repeated (median and min..max), with the 1-minute load average sampled before every
run and printed with every figure. A count that is off, a failed or timed-out run
makes the exit status 1. ``--plot PATH`` also draws the figures (matplotlib: the
project's ``bench`` extra, ``pip install -e '.[bench]'``).

Usage::

    python benchmarks/scale.py                              # full sweep, 3 repetitions
    python benchmarks/scale.py --plot benchmarks/results/scale.png --json out.json
    python benchmarks/scale.py --quick --reps 1             # CI smoke (counts, no timing)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import compare
from compare import CLIENT_NAMES, DRIVERS, Client, Run, ensure_official, make_certs, run_pair

SCALE_SERVER = compare.BENCH_DIR / "loadserver_scale.py"
#: Jobs the official SDK cannot run, and why (it runs R resume inside its run()).
OFFICIAL_NA = {
    "R fresh": "the official client keeps the calls of a session the server replaced: "
    "their waits never end (reference section 8.3, 'orphaned forever')",
    "M": "the official client drops a messaging.state event whose message_id it does not "
    "track yet (reference section 13.2): the states that follow the messaging.send response "
    "in the same read are lost and wait() never returns (0 of 100 in a --quick "
    "--with-official --force-official run)",
}


@dataclass(frozen=True)
class Sizes:
    levels: tuple[int, ...]  # live calls for S
    events: int  # S blast
    paced: int  # S latency events
    rate: float  # S paced events per second
    resume_calls: int
    messages: int
    timeout: float


FULL = Sizes((1, 100, 1000, 10_000), 10_000, 1000, 1000.0, 1000, 10_000, timeout=75.0)
QUICK = Sizes((1, 10, 50), 600, 100, 2000.0, 20, 100, timeout=30.0)


@dataclass(frozen=True)
class Job:
    name: str  # "S@1000", "R resume", "R fresh", "M"
    workload: str
    calls: int = 0
    mode: str = ""

    def args(self, z: Sizes) -> tuple[list[str], list[str]]:
        """(server args after the script, driver args)."""
        if self.workload == "S":
            common = ["--calls", str(self.calls), "--events", str(z.events)]
            server = [*common, "--paced", str(z.paced), "--rate", str(z.rate)]
            return server, [*common, "--paced", str(z.paced)]
        if self.workload == "R":
            common = ["--calls", str(self.calls), "--mode", self.mode]
            return common, common
        common = ["--messages", str(z.messages)]
        return common, common


def jobs_for(z: Sizes) -> list[Job]:
    return [
        *(Job(f"S@{n}", "S", calls=n) for n in z.levels),
        Job("R resume", "R", calls=z.resume_calls, mode="resume"),
        Job("R fresh", "R", calls=z.resume_calls, mode="fresh"),
        Job("M", "M"),
    ]


# -- count checks --------------------------------------------------------------------


def expected(job: Job, z: Sizes) -> tuple[int, dict[str, int]]:
    """(events sent, requests by method) at completion, exactly (pings and probes aside)."""
    n = job.calls
    if job.workload == "S":  # 6 a call, the blast, the paced, ctl-start/hold 3 each, ctl-done
        events = 6 * n + z.events + z.paced + 7
        return events, {
            "signalwire.connect": 1,
            "calling.answer": n,
            "calling.play": n,
            "calling.end": n + 2,
        }
    if job.workload == "R":
        per_call = 6 if job.mode == "resume" else 3  # fresh: no finished, ending, ended
        ends = n + 2 if job.mode == "resume" else 2
        return per_call * n + 7, {
            "signalwire.connect": 2,
            "calling.answer": n,
            "calling.play": n,
            "calling.end": ends,
        }
    m = z.messages
    return 3 * m + 4, {"signalwire.connect": 1, "calling.end": 1, "messaging.send": m}


def check(job: Job, d: dict[str, Any], s: dict[str, Any], z: Sizes) -> list[str]:
    """Every count of a sweep run, exactly; returns the problems."""
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
    expect("server: events acked == events sent", c.get("acks"), c.get("events_sent"))
    expect("server: events never acked", s.get("unacked"), 0)
    done = s.get("at_done") or {}
    events, methods = expected(job, z)
    expect("server: events sent", done.get("counts", {}).get("events_sent"), events)
    skip = ("signalwire.ping", "calling.clear_digit_bindings")
    got = {m: k for m, k in (done.get("methods") or {}).items() if m not in skip}
    expect("server: requests by method", got, methods)
    n = job.calls
    if job.workload == "R":
        expect("server: the reconnect sent the session's protocol", s.get("resume_requested"), True)
        probes = c.get("probes", 0)
        if probes > n:
            problems.append(f"COUNT MISMATCH server: {probes} probes for {n} calls")
    if not d:
        return problems
    if job.workload == "S":
        sent = done.get("to_calls")
        expect("server: calls completed", done.get("counts", {}).get("completed"), n)
        expect("driver: handlers completed", d.get("completed"), n)
        expect("driver: calls in action.wait() at the hold sample", d.get("held"), n)
        expect("driver: blast events seen", d.get("listener_events"), z.events)
        expect("driver: paced events timed", d.get("lat_n"), z.paced)
        expect("driver: every listener event, by type:state", d.get("listener_counts"), sent)
        expect("server: ended events sent to the calls", (sent or {}).get("state:ended"), n)
    elif job.workload == "R":
        expect("driver: calls held at the drop", d.get("held"), n)
        if job.mode == "resume":
            expect("server: calls completed on the new link", c.get("completed"), n)
            expect("driver: handlers completed", d.get("completed"), n)
            expect("driver: waits failed", d.get("failed"), 0)
        else:
            expect("server: calls forgotten by the fresh session", c.get("forgotten"), n)
            expect("driver: waits failed", d.get("failed"), n)
            expect("driver: handlers completed", d.get("completed"), 0)
    else:
        m = z.messages
        expect("server: messages accepted", c.get("messages"), m)
        expect("driver: waits returned", d.get("completed"), m)
        expect("driver: messages delivered", d.get("delivered"), m)
        expect("driver: on_completed callbacks", d.get("completed_callbacks"), m)
    return problems


# -- figures -------------------------------------------------------------------------


@dataclass(frozen=True)
class Figure:
    job_prefix: str  # "S@" (one row per level) or a job name
    label: str
    unit: str
    value: Callable[[Run, Job, Sizes], float]
    min_calls: int = 0  # S rows: only from this many calls


def _per(num: float, den: float) -> float:
    return num / den if den else float("nan")


FIGURES = [
    Figure(
        "S@",
        "RSS per held call",
        "KiB",
        lambda r, j, z: _per((r.driver["rss_hold"] - r.driver["rss_base"]) / 1024, j.calls),
        min_calls=100,
    ),
    Figure(
        "S@",
        "client CPU per event",
        "us",
        lambda r, j, z: _per(r.driver["window_cpu_s"] * 1e6, z.events),
    ),
    Figure("S@", "events/s", "", lambda r, j, z: _per(z.events, r.driver["window_wall_s"])),
    Figure("S@", "event latency p50", "us", lambda r, j, z: r.driver["lat_p50_us"]),
    Figure("S@", "event latency p99", "us", lambda r, j, z: r.driver["lat_p99_us"]),
    Figure(
        "R resume",
        "drop -> reconnect (backoff)",
        "ms",
        lambda r, j, z: (r.server["t_connect"] - r.server["t_drop"]) * 1e3,
    ),
    Figure(
        "R resume",
        "reconnect -> fully resumed",
        "ms",
        lambda r, j, z: (r.server["t_done"] - r.server["t_connect"]) * 1e3,
    ),
    Figure(
        "R resume",
        "client CPU drop -> resumed",
        "ms",
        lambda r, j, z: r.driver["run_cpu_s"] * 1e3,
    ),
    Figure(
        "R resume",
        "recheck probes sent",
        "",
        lambda r, j, z: float(r.server["counts"].get("probes", 0)),
    ),
    Figure(
        "R fresh",
        "reconnect -> last wait failed",
        "ms",
        lambda r, j, z: (r.driver["mono_last"] - r.server["t_connect"]) * 1e3,
    ),
    Figure(
        "R fresh",
        "client CPU drop -> all failed",
        "ms",
        lambda r, j, z: r.driver["run_cpu_s"] * 1e3,
    ),
    Figure("M", "messages/s", "", lambda r, j, z: _per(z.messages, r.driver["run_wall_s"])),
    Figure(
        "M",
        "client CPU per message",
        "us",
        lambda r, j, z: _per(r.driver["run_cpu_s"] * 1e6, z.messages),
    ),
]


def figure_rows(figure: Figure, jobs: list[Job]) -> list[Job]:
    if figure.job_prefix.endswith("@"):
        return [
            j for j in jobs if j.name.startswith(figure.job_prefix) and j.calls >= figure.min_calls
        ]
    return [j for j in jobs if j.name == figure.job_prefix]


def collect(
    runs: list[Run], clients: list[Client], jobs: list[Job], z: Sizes
) -> list[dict[str, Any]]:
    """One row per (figure, job): every client's values (or "n/a"/"FAIL") and the load."""
    by_key: dict[tuple[str, str], list[Run]] = {}
    for r in runs:
        by_key.setdefault((r.client, r.job), []).append(r)
    rows: list[dict[str, Any]] = []
    for fig in FIGURES:
        for job in figure_rows(fig, jobs):
            row: dict[str, Any] = {"figure": fig.label, "unit": fig.unit, "job": job.name}
            loads: list[float] = []
            for c in clients:
                rs = by_key.get((c.name, job.name), [])
                if c.unavailable or (c.name == "official" and job.name in OFFICIAL_NA):
                    row[c.name] = "n/a"
                elif not rs:
                    row[c.name] = ""
                elif any(not r.ok for r in rs):
                    row[c.name] = "FAIL"
                else:
                    row[c.name] = [fig.value(r, job, z) for r in rs]
                loads.extend(r.load for r in rs)
            row["load"] = loads
            rows.append(row)
    return rows


def _cell(v: Any) -> str:
    if isinstance(v, str):
        return v
    return compare._cell(v)


def render(rows: list[dict[str, Any]], clients: list[Client]) -> str:
    header = ["figure", "job", *(c.name for c in clients), "load 1m"]
    body = []
    for row in rows:
        label = f"{row['figure']} {row['unit']}".strip()
        body.append([label, row["job"], *(_cell(row[c.name]) for c in clients), _cell(row["load"])])
    return compare.render(header, body)


# -- the plot ------------------------------------------------------------------------


def _spread(values: list[float]) -> tuple[float, float, float]:
    """(median, median - min, max - median): a point and its error bar."""
    med = statistics.median(values)
    return med, med - min(values), max(values) - med


def plot(
    rows: list[dict[str, Any]], clients: list[Client], info: dict[str, str], path: Path
) -> str:
    """Draw the sweep into ``path`` (PNG); returns "" or why it could not."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed: pip install -e '.[bench]'"
    colours = {
        "limit": "#555555",
        "relay_anyio/asyncio": "#1f77b4",
        "relay_anyio/trio": "#2ca02c",
        "official": "#d62728",
    }
    lines = [
        ("RSS per held call", "KiB per held call"),
        ("client CPU per event", "client CPU µs per event (blast)"),
        ("events/s", "events per second (blast)"),
        ("event latency p99", "p99 µs, server write -> listener (paced)"),
    ]
    bars = [
        ("R resume", "reconnect -> fully resumed", "resume: reconnect→resumed ms"),
        ("R resume", "client CPU drop -> resumed", "resume: client CPU ms"),
        ("R fresh", "reconnect -> last wait failed", "fresh: reconnect→all failed ms"),
        ("R fresh", "client CPU drop -> all failed", "fresh: client CPU ms"),
        ("M", "client CPU per message", "messaging: client CPU µs/msg"),
    ]
    fig, axes = plt.subplots(2, 3, figsize=(15, 8.5))
    flat = list(axes.flat)
    for ax, (label, ylabel) in zip(flat, lines, strict=False):
        for c in clients:
            points = [
                (int(row["job"].split("@")[1]), *_spread(row[c.name]))
                for row in rows
                if row["figure"] == label and not isinstance(row[c.name], str) and row[c.name]
            ]
            if points:
                xs, ys, lo, hi = zip(*points, strict=True)
                ax.errorbar(
                    xs,
                    ys,
                    yerr=[lo, hi],
                    marker="o",
                    capsize=3,
                    label=c.name,
                    color=colours.get(c.name),
                )
        ax.set_xscale("log")
        ax.set_yscale("linear" if label == "RSS per held call" else "log")
        ax.set_xlabel("live calls in one process")
        ax.set_ylabel(ylabel)
        ax.set_title(label)
        ax.grid(True, which="both", alpha=0.3)
    flat[1].legend(fontsize=8)
    ax = flat[4]
    width = 0.8 / max(1, len(clients))
    for i, c in enumerate(clients):
        bar_points = []
        for g, (job, label, _) in enumerate(bars):
            for row in rows:
                v = row[c.name]
                if row["job"] == job and row["figure"] == label and not isinstance(v, str) and v:
                    bar_points.append((g + i * width, *_spread(v)))
        if bar_points:
            xs, ys, lo, hi = zip(*bar_points, strict=True)
            ax.bar(xs, ys, width, yerr=[lo, hi], capsize=3, label=c.name, color=colours.get(c.name))
    ax.set_xticks([g + width * (len(clients) - 1) / 2 for g in range(len(bars))])
    ax.set_xticklabels([b[2] for b in bars], fontsize=7, rotation=20, ha="right")
    ax.set_yscale("log")
    ax.set_title("resume (1000 live calls) and messaging (10 000 in flight)")
    ax.grid(True, axis="y", which="both", alpha=0.3)
    loads = [x for row in rows for x in row["load"]]
    fails = sorted(
        {f"{c.name} {row['job']}" for row in rows for c in clients if row[c.name] == "FAIL"}
    )
    flat[5].axis("off")
    flat[5].text(
        0.0,
        1.0,
        "\n".join(
            [
                f"{info['date']}",
                f"nproc={info['nproc']}  {info['cpu']}",
                f"python {info['python']}",
                f"calibration {info.get('calibration_ms', '?')} ms CPU (2M-step loop)",
                "median of the repetitions; bars: min..max",
                f"load 1m before the runs: {min(loads):.2f}..{max(loads):.2f}"
                if loads
                else "load 1m: -",
                "(per figure: see the table)",
                "n/a for the official client:",
                "  R fresh (orphans the old calls),",
                "  M (loses early message states)",
                *(f"FAIL (a rep, see the table): {f}" for f in fails),
            ]
        ),
        va="top",
        fontsize=9,
        family="monospace",
    )
    fig.suptitle("relay_anyio scale sweep (benchmarks/scale.py)", fontsize=11)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return ""


# -- main ----------------------------------------------------------------------------


def make_clients(wanted: list[str]) -> list[Client]:
    clients: list[Client] = []
    for name in CLIENT_NAMES:
        if name not in wanted:
            continue
        if name == "limit":
            clients.append(Client(name, [sys.executable, str(DRIVERS / "limit_scale.py")]))
        elif name.startswith("relay_anyio/"):
            backend = name.split("/", 1)[1]
            script = str(DRIVERS / "relay_anyio_driver.py")
            clients.append(Client(name, [sys.executable, script, "--backend", backend]))
        else:
            python, reason = ensure_official()
            clients.append(Client(name, [python, str(DRIVERS / "official_driver.py")], reason))
    return clients


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes (no official SDK)")
    parser.add_argument("--with-official", action="store_true", help="official SDK in --quick")
    parser.add_argument("--reps", type=int, default=3, help="repetitions (default 3)")
    parser.add_argument("--only", default="", help="jobs whose name starts with these, e.g. S,M")
    parser.add_argument("--clients", default="", help=f"subset of {','.join(CLIENT_NAMES)}")
    parser.add_argument(
        "--force-official",
        action="store_true",
        help="run the official SDK on R fresh and M too (it fails them: see OFFICIAL_NA)",
    )
    parser.add_argument("--plot", default="", help="also draw the figures into this PNG")
    parser.add_argument("--json", default="", help="also write every raw report here")
    parser.add_argument(
        "--from-json", default="", help="print the table and draw the plot of a saved --json run"
    )
    args = parser.parse_args(argv)
    if args.from_json:
        saved = json.loads(Path(args.from_json).read_text())
        names = [c for c in CLIENT_NAMES if c in saved["rows"][0]]
        shown = [Client(c, []) for c in names]
        print(render(saved["rows"], shown))
        if args.plot:
            why = plot(saved["rows"], shown, saved["machine"], Path(args.plot))
            print(f"plot: {why}" if why else f"plot written to {args.plot}")
        return 0
    z = QUICK if args.quick else FULL
    jobs = jobs_for(z)
    if args.only:
        prefixes = [p.strip() for p in args.only.split(",") if p.strip()]
        jobs = [j for j in jobs if any(j.name.startswith(p) for p in prefixes)]
    wanted = [c.strip() for c in args.clients.split(",") if c.strip()] or [
        c for c in CLIENT_NAMES if c != "official" or not args.quick or args.with_official
    ]
    unknown = [c for c in wanted if c not in CLIENT_NAMES]
    if unknown or args.reps < 1 or not jobs:
        parser.error(f"bad --clients {unknown}, --reps or --only")

    started = time.perf_counter()
    clients = make_clients(wanted)
    info = compare.machine_info()
    print(
        f"scale sweep  {info['date']}  nproc={info['nproc']}  cpu={info['cpu']}  "
        f"python={info['python']}  load at start {os.getloadavg()[0]:.2f}  "
        f"calibration {info['calibration_ms']} ms CPU (2M-step Python loop)",
        flush=True,
    )
    runs: list[Run] = []
    with tempfile.TemporaryDirectory(prefix="relay-scale-") as tmp:
        certs = make_certs(Path(tmp))
        active = [c for c in clients if not c.unavailable]
        for rep in range(args.reps):
            shift = rep % len(active) if active else 0
            order = active[shift:] + active[:shift]
            for job in jobs:
                for client in order:
                    if client.name == "official" and job.name in OFFICIAL_NA:
                        if not args.force_official:
                            continue
                    run = Run(client=client.name, job=job.name, rep=rep)
                    run.load = os.getloadavg()[0]
                    server_args, driver_args = job.args(z)
                    run_pair(
                        run,
                        client,
                        [str(SCALE_SERVER), "--workload", job.workload, *server_args],
                        ["--workload", job.workload, *driver_args],
                        z.timeout,
                        certs,
                        max_calls=max(z.levels) * 2,
                    )
                    run.problems.extend(check(job, run.driver, run.server, z))
                    runs.append(run)
                    status = "ok" if run.ok else "FAILED"
                    print(
                        f"  rep {rep + 1}/{args.reps} {job.name:<9} {client.name:<20} "
                        f"{status} ({run.seconds:.1f} s, load {run.load:.2f})",
                        flush=True,
                    )
                    for problem in run.problems:
                        print(f"    !! {problem}", flush=True)

    rows = collect(runs, clients, jobs, z)
    versions = {r.client: r.driver.get("extra", {}).get("version") for r in runs if r.driver}
    print()
    print(
        f"scale sweep  {info['date']}  nproc={info['nproc']}  cpu={info['cpu']}  "
        f"python={info['python']}  platform={info['platform']}  "
        f"calibration {info['calibration_ms']} ms CPU"
    )
    print(
        f"sizes: S at {', '.join(map(str, z.levels))} live calls, blast {z.events} events, "
        f"{z.paced} paced at {z.rate:g}/s; R {z.resume_calls} calls; M {z.messages} messages; "
        f"{args.reps} rep(s), median (min..max); load 1m = loadavg sampled before each run"
    )
    print(f"versions: { {k: v for k, v in versions.items() if v} }")
    print()
    print(render(rows, clients))
    if any(c.name == "official" for c in clients) and not args.force_official:
        for job_name, why in OFFICIAL_NA.items():
            print(f"\nofficial, {job_name}: n/a -- {why}")
    for c in clients:
        if c.unavailable:
            print(f"\n{c.name}: n/a -- {c.unavailable}")
    failed = [r for r in runs if not r.ok]
    if failed:
        print(f"\n{'!' * 72}\n{len(failed)} run(s) FAILED or had COUNT MISMATCHES:")
        for r in failed:
            print(f"\n[{r.client} {r.job} rep {r.rep + 1}]")
            for problem in r.problems:
                print(f"  - {problem}")
            print("  " + r.stderr_tail.replace("\n", "\n  "))
        print("!" * 72)
    else:
        print("\nall counts matched exactly (every call, event, probe and message accounted for)")
    if args.plot:
        why = plot(rows, clients, info, Path(args.plot))
        print(f"plot: {why}" if why else f"plot written to {args.plot}")
    print(f"total time {time.perf_counter() - started:.0f} s")
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "machine": info,
                    "sizes": z.__dict__,
                    "reps": args.reps,
                    "runs": [{**r.__dict__} for r in runs],
                    "rows": rows,
                },
                indent=1,
            )
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
