"""Measurement helpers shared by every benchmark driver (stdlib only).

Each driver runs in its own process, measures itself (CPU with
``time.process_time``, RSS from ``/proc/self/statm`` and ``getrusage``, the Python
heap with ``tracemalloc`` when asked) and prints exactly one JSON line on stdout.
This module is imported by the drivers for the SDKs *and* by the limit driver; it
contains no handler code. It must run on the official SDK's own interpreter too, so
it imports nothing outside the standard library.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import signal
import subprocess
import sys
import time
import tracemalloc
from dataclasses import asdict, dataclass, field
from typing import Any

WORKLOADS = ("W1", "W2", "W3", "W4", "S", "R", "M")  # S, R, M: the scale sweep
#: Control calls offered by the load server (see loadserver.py).
CTL_START, CTL_HOLD, CTL_DONE = "ctl-start", "ctl-hold", "ctl-done"
CTL_DROP = "ctl-drop"  # R: the server drops the link once this call is hung up
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def rss_bytes() -> int:
    """Current resident set size."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * _PAGE
    except OSError:  # pragma: no cover - not Linux
        return max_rss_bytes()


def max_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def count_live(type_names: tuple[str, ...]) -> dict[str, int]:
    """How many gc-tracked objects of each type name are alive (after a collection)."""
    gc.collect()
    counts = dict.fromkeys(type_names, 0)
    for obj in gc.get_objects():
        name = type(obj).__name__
        if name in counts:
            counts[name] += 1
    return counts


def heap_growth(base: tracemalloc.Snapshot, top: int = 6) -> list[str]:
    """The allocation sites that grew most since ``base`` (for "nothing left" checks)."""
    snapshot = tracemalloc.take_snapshot().filter_traces(
        (tracemalloc.Filter(False, tracemalloc.__file__),)
    )
    stats = snapshot.compare_to(base, "lineno")
    return [str(s) for s in stats[:top] if s.size_diff > 0]


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted list (q in 0..100)."""
    if not sorted_values:
        return 0.0
    rank = max(1, min(len(sorted_values), round(q / 100.0 * len(sorted_values) + 0.5)))
    return sorted_values[rank - 1]


class WindowSampler:
    """A profiler over the measured window only (``BENCH_SAMPLE=PATH``).

    ``cpu_profile.py`` sets ``BENCH_SAMPLE``; the drivers call ``window_start()`` and
    ``window_stop()`` where they take their window samples, so the imports, the
    connect and the teardown are not profiled. At the stop the stacks are written,
    root first, in the collapsed format of flame graphs (``frame;frame;... count``).
    Time in a C function (an ``ssl`` read, ``orjson.loads``, a socket write) is
    counted on the Python function that called it. Two samplers
    (``BENCH_SAMPLER``):

    * ``itimer`` (default): ``ITIMER_PROF`` fires on the process's own CPU time (user
      and system), so waiting and being descheduled are never sampled; the handler
      records the main thread's stack. The kernel checks the timer at its tick, so
      there are a few hundred samples per CPU second whatever ``BENCH_SAMPLE_HZ``
      asks; on trio each sample also wakes the loop through its wakeup fd.
    * ``py-spy`` (``BENCH_PYSPY``: the binary): samples from outside at
      ``BENCH_SAMPLE_HZ`` of wall time; cheap for the process, but a thread that is
      runnable and waiting for a CPU is sampled too, so on a loaded machine system
      calls that wake another process (loopback writes) look larger.
    """

    def __init__(self, path: str, kind: str, rate_hz: int) -> None:
        self.path = path
        self.kind = kind
        self.rate = rate_hz
        self.stacks: dict[str, int] = {}
        self.proc: subprocess.Popen[bytes] | None = None
        self.running = False

    def _handler(self, signum: int, frame: Any) -> None:
        names = []
        while frame is not None:
            code = frame.f_code
            names.append(f"{code.co_qualname} ({code.co_filename}:{code.co_firstlineno})")
            frame = frame.f_back
        key = ";".join(reversed(names))
        self.stacks[key] = self.stacks.get(key, 0) + 1

    def start(self) -> None:
        if self.running:
            return
        self.running = True
        if self.kind == "itimer":
            signal.signal(signal.SIGPROF, self._handler)
            interval = 1.0 / self.rate
            signal.setitimer(signal.ITIMER_PROF, interval, interval)
            return
        pid = str(os.getpid())
        command = [os.environ.get("BENCH_PYSPY", "py-spy"), "record", "--pid", pid]
        command += ["--rate", str(self.rate), "--nonblocking", "--threads"]
        command += ["--format", "raw", "--output", self.path]
        self.proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.3)  # let it attach (the clock has not started yet)

    def stop(self) -> None:
        if not self.running:
            return
        self.running = False
        if self.kind == "itimer":
            signal.setitimer(signal.ITIMER_PROF, 0.0, 0.0)
            with open(self.path, "w", encoding="utf-8") as f:
                for key, count in sorted(self.stacks.items(), key=lambda kv: -kv[1]):
                    f.write(f"{key} {count}\n")
            return
        proc, self.proc = self.proc, None
        if proc is not None:
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=30)


_SAMPLER = (
    WindowSampler(
        os.environ["BENCH_SAMPLE"],
        os.environ.get("BENCH_SAMPLER", "itimer"),
        int(os.environ.get("BENCH_SAMPLE_HZ", "1000")),
    )
    if os.environ.get("BENCH_SAMPLE")
    else None
)


def window_start() -> None:
    """The measured window begins (a no-op unless ``BENCH_SAMPLE`` is set)."""
    if _SAMPLER is not None:
        _SAMPLER.start()


def window_stop() -> None:
    """The measured window ends; the profile is written (if one runs)."""
    if _SAMPLER is not None:
        _SAMPLER.stop()


@dataclass
class Sample:
    cpu: float
    wall: float
    rss: int
    traced: int

    @classmethod
    def take(cls, collect: bool = False) -> Sample:
        if collect:
            gc.collect()
        traced = tracemalloc.get_traced_memory()[0] if tracemalloc.is_tracing() else 0
        return cls(time.process_time(), time.perf_counter(), rss_bytes(), traced)


@dataclass
class Config:
    port: int
    workload: str
    calls: int
    events: int
    requests: int
    timeout: float
    heap: bool  # W3: trace the Python heap with tracemalloc
    backend: str = "asyncio"
    paced: int = 0  # S: latency events (after the blast of ``events``)
    mode: str = "resume"  # R: "resume" or "fresh" (the server refuses the resume)
    messages: int = 0  # M: send_message calls in flight at once


@dataclass
class Report:
    """What every driver prints (one JSON line); compare.py checks and tabulates it."""

    client: str
    workload: str
    ok: bool = False
    error: str = ""
    handler_errors: list[str] = field(default_factory=list)
    completed: int = 0  # calls whose handler ran to the end
    held: int = 0  # W3: calls waiting in action.wait() at the hold sample
    listener_events: int = 0  # W2: blast events seen by listeners
    listener_play: int = 0
    listener_state: int = 0
    #: W2: every event a listener saw, blast and teardown alike, by "play:<state>" /
    #: "state:<call_state>" (compared exactly with what the server sent the calls)
    listener_counts: dict[str, int] = field(default_factory=dict)
    run_cpu_s: float = 0.0  # ctl-start -> ctl-done
    run_wall_s: float = 0.0
    window_cpu_s: float = 0.0  # W2: first -> last blast event in a listener
    window_wall_s: float = 0.0
    rss_base: int = 0
    rss_hold: int = 0
    rss_after: int = 0
    heap_base: int = 0
    heap_hold: int = 0
    heap_after: int = 0
    calls_alive_after: int = -1  # Call objects still alive at ctl-done (minus ctl-done's)
    max_rss: int = 0
    rtt_p50_us: float = 0.0
    rtt_p99_us: float = 0.0
    rtt_n: int = 0
    failed: int = 0  # R fresh: waits that failed when the session was replaced
    delivered: int = 0  # M: messages whose wait() returned in state "delivered"
    completed_callbacks: int = 0  # M: on_completed callbacks run
    lat_p50_us: float = 0.0  # S: paced event latency, server write -> listener
    lat_p99_us: float = 0.0
    lat_n: int = 0
    mono_last: float = 0.0  # time.monotonic() when the last call completed / failed
    extra: dict[str, Any] = field(default_factory=dict)

    def emit(self) -> None:
        self.max_rss = max_rss_bytes()
        sys.stdout.write(json.dumps({"role": "driver", **asdict(self)}) + "\n")
        sys.stdout.flush()


def parse_args(description: str, argv: list[str] | None = None) -> Config:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workload", choices=WORKLOADS, required=True)
    parser.add_argument("--calls", type=int, default=1)
    parser.add_argument("--events", type=int, default=0)
    parser.add_argument("--requests", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument("--heap", action="store_true", help="W3: measure with tracemalloc")
    parser.add_argument("--backend", choices=("asyncio", "trio"), default="asyncio")
    parser.add_argument("--paced", type=int, default=0)
    parser.add_argument("--mode", choices=("resume", "fresh"), default="resume")
    parser.add_argument("--messages", type=int, default=0)
    ns = parser.parse_args(argv)
    return Config(
        port=ns.port,
        workload=ns.workload,
        calls=ns.calls,
        events=ns.events,
        requests=ns.requests,
        timeout=ns.timeout,
        heap=ns.heap,
        backend=ns.backend,
        paced=ns.paced,
        mode=ns.mode,
        messages=ns.messages,
    )
