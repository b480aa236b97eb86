"""Where the CPU goes: W1, W2 and W4 profiled per inbound call / event / round trip.

Runs ``compare.py``'s workloads (same load server, same drivers, larger sizes) with
``BENCH_SAMPLE`` set, so that each driver profiles its own measured window only (see
``bench_common.WindowSampler``: by default an ``ITIMER_PROF`` sampler of the process's
CPU time; ``--sampler py-spy`` samples wall time from outside). It merges the
repetitions and prints, per client and workload, the CPU per unit in the profiled
runs and how it divides: by layer (the leaf frame's module) and by function (self
time: the function plus the C functions it called, such as an ``ssl`` read, a socket
write or ``orjson.loads``), each share also in microseconds per unit; then inclusive
shares of relay_anyio's main entry points.

Usage::

    python benchmarks/cpu_profile.py                     # W1, W2, W4; limit, asyncio, trio
    python benchmarks/cpu_profile.py --only W2 --reps 3 --top 25 --keep /tmp/stacks
    python benchmarks/cpu_profile.py --sampler py-spy    # needs the bench extra

The per-unit CPU of a profiled run is a little above ``compare.py``'s (a Python signal
handler per sample), and on a loaded machine every CPU figure is inflated; the shares
are what this is for.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from collections import Counter
from pathlib import Path

import compare
from compare import DRIVERS, LOADSERVER, Client, Run, make_certs, run_pair

#: Workload sizes for profiling: larger than compare.py's so that a window holds
#: thousands of samples.
SIZES = {
    "W1": (["--calls", "10000", "--concurrency", "100"], ["--calls", "10000"], 10_000, "call"),
    "W2": (
        ["--calls", "1000", "--events", "200000"],
        ["--calls", "1000", "--events", "200000"],
        200_000,
        "event",
    ),
    "W4": (["--requests", "10000"], ["--requests", "10000"], 10_000, "round trip"),
}
CLIENTS = {
    "limit": [sys.executable, str(DRIVERS / "limit_driver.py")],
    "relay_anyio/asyncio": [
        sys.executable,
        str(DRIVERS / "relay_anyio_driver.py"),
        "--backend",
        "asyncio",
    ],
    "relay_anyio/trio": [
        sys.executable,
        str(DRIVERS / "relay_anyio_driver.py"),
        "--backend",
        "trio",
    ],
}

#: Layers by where the leaf frame's code lives (first match wins).
LAYERS = [
    ("relay_anyio/_frames.py", "WebSocket frames (_frames)"),
    ("relay_anyio/_websocket.py", "WebSocket (_websocket)"),
    ("relay_anyio/_netstream.py", "byte stream (_netstream)"),
    ("relay_anyio/_transport.py", "transport (_transport)"),
    ("relay_anyio/_session.py", "session: JSON, acks, waiters (_session)"),
    ("relay_anyio/_rpc.py", "session: JSON, acks, waiters (_rpc)"),
    ("relay_anyio/_envelope.py", "session: JSON, acks, waiters (_envelope)"),
    ("relay_anyio/_reconnect.py", "session: reconnect (_reconnect)"),
    ("relay_anyio/_router.py", "routing (_router)"),
    ("relay_anyio/_client.py", "client (_client)"),
    ("relay_anyio/_call.py", "call (_call)"),
    ("relay_anyio/_commands.py", "commands (_commands, _media)"),
    ("relay_anyio/_media.py", "commands (_commands, _media)"),
    ("relay_anyio/_actions.py", "actions (_actions)"),
    ("relay_anyio/_listeners.py", "listeners (_listeners)"),
    ("relay_anyio/_events.py", "event objects (_events)"),
    ("relay_anyio/_event_base.py", "event objects (_events)"),
    ("relay_anyio/_call_events.py", "event objects (_events)"),
    ("relay_anyio/_action_events.py", "event objects (_events)"),
    ("relay_anyio/_message_events.py", "event objects (_events)"),
    ("relay_anyio/_event_values.py", "event objects (_events)"),
    ("relay_anyio/_sync.py", "LazyEvent (_sync)"),
    ("relay_anyio/_scopes.py", "scopes (_scopes)"),
    ("relay_anyio/", "relay_anyio, other"),
    ("benchmarks/", "benchmark handler / the limit's code"),
    ("anyio/streams/tls.py", "anyio TLS stream"),
    ("anyio/", "anyio"),
    ("trio/_socket.py", "trio socket I/O (trio/_socket)"),
    ("trio/_core/_io_epoll.py", "trio epoll (_io_epoll)"),
    ("trio/", "trio"),
    ("asyncio/sslproto.py", "asyncio TLS (sslproto)"),
    ("asyncio/selector_events.py", "asyncio socket I/O (selector_events)"),
    ("asyncio/", "asyncio event loop"),
    ("ssl.py", "ssl (SSLObject)"),
    ("selectors.py", "selectors (epoll)"),
    ("socket.py", "socket"),
    ("json/", "json (stdlib)"),
    ("uuid.py", "uuid"),
    ("random.py", "random"),
    ("logging/", "logging"),
]
#: The layers grouped for the summary table, in display order; ``group_of`` matches.
GROUPS = [
    "socket, TLS, epoll",
    "event loop, tasks, cancel scopes (asyncio/trio/anyio core)",
    "WebSocket framing (`_frames`, `_websocket`, `_netstream`)",
    "session: JSON decode, acks, waiters",
    "routing, call, commands, actions, listeners, event objects",
    "the handler / the limit's own code",
    "other",
]
_GROUP_KEYS = [  # (group index, substrings of the layer name), first match wins
    (2, ("WebSocket", "byte stream", "transport (")),
    (0, ("socket I/O", "TLS", "ssl (", "selectors", "trio epoll")),
    (5, ("benchmark handler",)),
    (3, ("session", "LazyEvent")),
    (4, ("routing", "client (", "call (", "commands", "actions", "listeners", "event objects")),
    (4, ("scopes (", "relay_anyio", "uuid")),
    (1, ("asyncio event loop", "trio", "anyio", "contextlib", "outcome", "weakref", "sniffio")),
]


def group_of(layer: str) -> str:
    if layer == "socket":
        return GROUPS[0]
    for index, keys in _GROUP_KEYS:
        if any(k in layer for k in keys):
            return GROUPS[index]
    return "other"


ENTRY_POINTS = [
    "_read",
    "_take_batch",
    "_classify",
    "_take_plain_event",
    "_acknowledge",
    "_route_all",
    "session_event",
    "_deliver",
    "dispatch",
    "request",
    "send_texts",
    "receive_batch",
    "_serve",
    "_handle_call",
    "answer",
    "play",
    "hangup",
    "wait",
    "volume",
    "_start",
]


def layer_of(frame: str) -> str:
    for marker, name in LAYERS:
        if marker in frame:
            return name
    return "other: " + frame.rsplit("(", 1)[-1].rstrip(")")


def _frame(raw: str) -> str:
    """``name (path:line)`` -> ``name (short path)``: one entry per function."""
    name, _, where = raw.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    for marker in ("site-packages/", "/relay_anyio/", "/benchmarks/", "/lib/python3."):
        if marker in path:
            path = path[path.index(marker) :].lstrip("/")
            break
    return f"{name} ({path})"


#: Leaf frames where the process waits for the loopback: py-spy cannot tell these
#: waits from the (small) CPU an epoll call costs, so they are left out, as is every
#: thread but the main one (asyncio's resolver thread idling in its queue).
IDLE_LEAVES = ("EpollSelector.select (", "EpollIOManager.get_events (")


def read_stacks(path: Path, drop_idle: bool) -> tuple[Counter[str], int]:
    """The main thread's stacks (py-spy: those on the CPU) and how many were idle."""
    stacks: Counter[str] = Counter()
    idle = 0
    for line in path.read_text(encoding="utf-8").splitlines():
        key, _, count = line.rpartition(" ")
        if not key or not count.isdigit():
            continue
        frames = [f for f in key.split(";") if not f.startswith(("thread ", "process "))]
        if not frames or not frames[0].startswith("<module> ("):
            continue  # not the main thread
        if drop_idle and frames[-1].startswith(IDLE_LEAVES):
            idle += int(count)
            continue
        stacks[";".join(_frame(f) for f in frames)] += int(count)
    return stacks, idle


def summarize(stacks: Counter[str], cpu_s: float, units: int, unit: str, top: int) -> list[str]:
    total = sum(stacks.values())
    if not total:
        return ["  (no samples)"]
    per_unit_us = cpu_s * 1e6 / units
    selfs: Counter[str] = Counter()
    layers: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    for key, n in stacks.items():
        frames = key.split(";")
        leaf = frames[-1]
        selfs[leaf] += n
        layers[layer_of(leaf)] += n
        seen = set()
        for frame in frames:
            if "relay_anyio/" in frame:
                name = frame.split(" (", 1)[0]
                if name in ENTRY_POINTS and name not in seen:
                    seen.add(name)
                    inclusive[frame] += n
    lines = [
        f"  CPU {per_unit_us:.2f} us per {unit} in the profiled window "
        f"({cpu_s:.2f} s CPU, {total} samples, {units} {unit}s)",
        "  by layer (leaf frame):",
    ]
    for name, n in layers.most_common():
        if n / total >= 0.005:
            lines.append(f"    {100 * n / total:5.1f} %  {per_unit_us * n / total:7.2f} us  {name}")
    lines.append(f"  top {top} functions by self time (incl. the C calls they make):")
    for name, n in selfs.most_common(top):
        lines.append(f"    {100 * n / total:5.1f} %  {per_unit_us * n / total:7.2f} us  {name}")
    if inclusive:
        lines.append("  relay_anyio entry points, inclusive:")
        for name, n in inclusive.most_common(12):
            lines.append(f"    {100 * n / total:5.1f} %  {per_unit_us * n / total:7.2f} us  {name}")
    return lines


def group_table(
    workload: str,
    unit: str,
    names: list[str],
    cells: dict[str, tuple[Counter[str], float]],
) -> list[str]:
    """A markdown table: µs per unit and share of each group of layers, per client."""
    shown = [n for n in names if n in cells]
    lines = [
        f"| {workload}, per {unit} | " + " | ".join(shown) + " |",
        "|---|" + "---:|" * len(shown),
    ]
    shares: dict[str, Counter[str]] = {}
    for name in shown:
        stacks, _ = cells[name]
        total = sum(stacks.values()) or 1
        grouped: Counter[str] = Counter()
        for key, n in stacks.items():
            layer = layer_of(key.rsplit(";", 1)[-1])
            grouped[group_of(layer)] += n
        shares[name] = Counter({g: 100.0 * n / total for g, n in grouped.items()})
    for group in GROUPS:
        row = []
        for name in shown:
            share = shares[name][group]
            per = cells[name][1] * share / 100.0
            row.append("-" if share < 0.5 else f"{per:.3g} ({share:.0f} %)")
        lines.append(f"| {group} | " + " | ".join(row) + " |")
    lines.append("| **total** | " + " | ".join(f"**{cells[n][1]:.3g}**" for n in shown) + " |")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--only", default="W1,W2,W4")
    parser.add_argument("--clients", default=",".join(CLIENTS))
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument(
        "--sampler",
        choices=("itimer", "py-spy"),
        default="itimer",
        help="itimer: the process's CPU time (default); py-spy: wall time, from outside",
    )
    parser.add_argument("--rate", type=int, default=1000, help="samples per second asked")
    parser.add_argument("--keep", default="", help="keep the collapsed stacks in this directory")
    args = parser.parse_args(argv)
    workloads = [w.strip() for w in args.only.split(",") if w.strip()]
    names = [c.strip() for c in args.clients.split(",") if c.strip()]
    pyspy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if args.sampler == "py-spy" and not Path(pyspy).exists():
        parser.error("py-spy is not installed: pip install -e '.[bench]'")
    info = compare.machine_info()
    print(
        f"profile  {info['date']}  nproc={info['nproc']}  cpu={info['cpu']}  "
        f"python={info['python']}  load at start {os.getloadavg()[0]:.2f}  "
        f"calibration {info['calibration_ms']} ms CPU (2M-step Python loop)",
        flush=True,
    )
    merged: dict[tuple[str, str], tuple[Counter[str], float, list[float]]] = {}
    idle_total: dict[tuple[str, str], int] = {}
    failed = 0
    with tempfile.TemporaryDirectory(prefix="relay-profile-") as tmp:
        out_dir = Path(args.keep) if args.keep else Path(tmp)
        out_dir.mkdir(parents=True, exist_ok=True)
        certs = make_certs(Path(tmp))
        for rep in range(args.reps):
            for workload in workloads:
                server_args, driver_args, _, _ = SIZES[workload]
                for name in names[rep % len(names) :] + names[: rep % len(names)]:
                    path = out_dir / f"{workload}-{name.replace('/', '-')}-{rep}.txt"
                    os.environ["BENCH_SAMPLE"] = str(path)
                    os.environ["BENCH_SAMPLE_HZ"] = str(args.rate)
                    os.environ["BENCH_PYSPY"] = pyspy
                    os.environ["BENCH_SAMPLER"] = args.sampler
                    load = os.getloadavg()[0]
                    run = Run(client=name, job=workload, rep=rep)
                    run_pair(
                        run,
                        Client(name, CLIENTS[name]),
                        [str(LOADSERVER), "--workload", workload, *server_args],
                        ["--workload", workload, *driver_args],
                        120.0,
                        certs,
                    )
                    ok = bool(run.driver.get("ok")) and path.exists()
                    print(
                        f"  rep {rep + 1} {workload} {name:<20} {'ok' if ok else 'FAILED'} "
                        f"({run.seconds:.1f} s, load {load:.2f})",
                        flush=True,
                    )
                    if not ok:
                        failed += 1
                        print("    " + run.stderr_tail.replace("\n", "\n    "))
                        continue
                    stacks, idle = read_stacks(path, args.sampler == "py-spy")
                    idle_total[(name, workload)] = idle_total.get((name, workload), 0) + idle
                    d = run.driver
                    cpu = d["run_cpu_s"] if workload == "W1" else d["window_cpu_s"]
                    acc, acc_cpu, loads = merged.get((name, workload), (Counter(), 0.0, []))
                    acc.update(stacks)
                    merged[(name, workload)] = (acc, acc_cpu + cpu, [*loads, load])
        os.environ.pop("BENCH_SAMPLE", None)
    for workload in workloads:
        _, _, units, unit = SIZES[workload]
        for name in names:
            entry = merged.get((name, workload))
            if entry is None:
                continue
            stacks, cpu, loads = entry
            idle = idle_total.get((name, workload), 0)
            print(
                f"\n{workload} {name}  ({len(loads)} run(s), load 1m "
                f"{min(loads):.2f}..{max(loads):.2f}, {idle} idle samples left out)"
            )
            print("\n".join(summarize(stacks, cpu, units * len(loads), unit, args.top)))
    print("\nBy group of layers, µs per unit in the profiled runs (share of the client's total):")
    for workload in workloads:
        _, _, units, unit = SIZES[workload]
        cells = {
            name: (
                merged[(name, workload)][0],
                merged[(name, workload)][1] * 1e6 / (units * len(merged[(name, workload)][2])),
            )
            for name in names
            if (name, workload) in merged
        }
        print()
        print("\n".join(group_table(workload, unit, names, cells)))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
