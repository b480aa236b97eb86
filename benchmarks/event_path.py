"""The synchronous part of the event path, without I/O: µs per event.

What the reader does for every ``signalwire.event`` once its bytes are decoded:
parse, check, remember the id, build the ack, route to the call, update the call and
its action, run plain listeners. W2 of ``compare.py`` measures it with the socket,
TLS and framing around it; this isolates it, so a change to the session, the client
or the call can be measured in seconds with little noise::

    .venv/bin/python benchmarks/event_path.py            # 1000 calls, 200 000 events
    .venv/bin/python benchmarks/event_path.py --events 50000 --reads 13
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
from typing import Any

import anyio

from relay_anyio import EVENT_CALL_PLAY, EVENT_CALL_STATE, RelayClient, RelayEvent
from relay_anyio._actions import PlayAction
from relay_anyio._json import CODEC, dumps
from relay_anyio._rpc import RpcConnection

NODE = "a6f1d2e0-node"


def frames(calls: list[str], controls: list[str], count: int) -> list[str]:
    out = []
    for n in range(count):
        i = n % len(calls)
        if n % 2:
            inner: dict[str, Any] = {
                "call_id": calls[i],
                "node_id": NODE,
                "tag": "",
                "call_state": "answered",
                "direction": "inbound",
                "bench": True,
            }
            kind = EVENT_CALL_STATE
        else:
            inner = {
                "call_id": calls[i],
                "node_id": NODE,
                "control_id": controls[i],
                "state": "playing",
                "bench": True,
            }
            kind = EVENT_CALL_PLAY
        out.append(
            dumps(
                {
                    "jsonrpc": "2.0",
                    "id": f"ev-{n}",
                    "method": "signalwire.event",
                    "params": {"event_type": kind, "timestamp": 1764000000.123, "params": inner},
                }
            )
        )
    return out


async def run(args: argparse.Namespace) -> list[float]:
    client = RelayClient(project="p", token="t", host="localhost", contexts=["bench"])
    session = client._session
    conn = RpcConnection(None, 1)  # type: ignore[arg-type]  # never sends: no I/O here
    seen = 0

    def listener(event: RelayEvent) -> None:
        nonlocal seen
        if event.params.get("bench"):
            seen += 1

    call_ids, controls = [], []
    async with anyio.create_task_group() as tg:
        for n in range(args.calls):
            call = client._router._new_call(
                {
                    "call_id": f"call-{n}",
                    "node_id": NODE,
                    "context": "bench",
                    "call_state": "answered",
                }
            )
            assert call is not None
            call._set_scope(tg)
            client._router.calls[call.call_id] = call
            call.on(EVENT_CALL_PLAY, listener)
            call.on(EVENT_CALL_STATE, listener)
            action = PlayAction(call, f"ctl-{n}")
            call._actions[action.control_id] = action
            call_ids.append(call.call_id)
            controls.append(action.control_id)
        results = []
        for _ in range(args.reps):
            batch = frames(call_ids, controls, args.events)
            session._inbox.forget()
            seen = acks = 0
            gc.collect()
            start = time.perf_counter()
            for i in range(0, len(batch), args.reads):
                replies, events = session._inbox.take_batch(conn, batch[i : i + args.reads])
                acks += len(replies)
                session._route_all(events)
            elapsed = time.perf_counter() - start
            assert seen == acks == args.events, (seen, acks, args.events)
            results.append(elapsed / args.events * 1e6)
        tg.cancel_scope.cancel()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--reads", type=int, default=13, help="frames per socket read")
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    print(
        f"event path, {args.events} events over {args.calls} calls, "
        f"{args.reads} per read, JSON codec {CODEC}"
    )
    for backend in ("asyncio", "trio"):
        results = anyio.run(run, args, backend=backend)
        print(
            f"  {backend:8} {statistics.median(results):6.2f} us/event "
            f"(min {min(results):.2f}, max {max(results):.2f}, {args.reps} reps)"
        )


if __name__ == "__main__":
    main()
