"""A trio service: the RELAY client in a nursery beside the service's other tasks.

A satisfaction survey: every caller rates the call from 1 to 5. Each handler sends a
record over a trio memory channel to a writer task (the stand-in for a database or a
queue producer), which appends it as a JSON line. SIGINT or SIGTERM stops the
service: calls still in a survey are hung up, the writer finishes, the process exits 0.

    SIGNALWIRE_PROJECT_ID=... SIGNALWIRE_API_TOKEN=... SIGNALWIRE_SPACE=... \\
        python embedding_trio.py survey.jsonl
"""

from __future__ import annotations

import json
import signal
import sys
from typing import TextIO

import attrs
import trio

from relay_anyio import Call, ConnectionState, RelayClient

QUESTION = "How did we do today? Press 1 to 5, 5 being best."
THANKS = "Thank you for your feedback!"


@attrs.frozen
class SurveyRecord:
    call_id: str
    caller: str
    rating: int | None  # None: no answer
    seconds: float


async def survey(call: Call, records: trio.MemorySendChannel[SurveyRecord]) -> None:
    """The call handler: ask, thank, hang up, hand the record to the writer."""
    start = trio.current_time()
    await call.answer()
    prompt = await call.play_and_collect(
        media=[{"type": "tts", "text": QUESTION}],
        collect={"digits": {"max": 1, "digit_timeout": 5.0}, "initial_timeout": 8.0},
    )
    digits = (await prompt.wait()).params.get("result", {}).get("digits", "")
    rating = int(digits) if digits in ("1", "2", "3", "4", "5") else None
    if rating is not None:
        thanks = await call.play([{"type": "tts", "text": THANKS}])
        await thanks.wait()
    await call.hangup()
    caller = call.device.get("params", {}).get("from_number", "")
    # Bounded channel: if the writer falls 100 records behind, handlers wait here.
    await records.send(SurveyRecord(call.call_id, caller, rating, trio.current_time() - start))


async def write_records(records: trio.MemoryReceiveChannel[SurveyRecord], out: TextIO) -> None:
    async with records:
        async for record in records:
            out.write(json.dumps(attrs.asdict(record)) + "\n")
            out.flush()


async def run_service(
    client: RelayClient,
    out: TextIO,
    stop: trio.Event,
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve until ``stop`` is set; the client and the writer share one nursery.

    Stopping leaves the client's block normally: calls still in a survey are hung up
    (shielded, bounded), then closing ``send`` lets the writer finish what is queued.
    """
    send, receive = trio.open_memory_channel[SurveyRecord](100)

    @client.on_call
    async def on_call(call: Call) -> None:
        await survey(call, send)

    def on_state(state: ConnectionState) -> None:
        print(f"relay connection: {state.value}", file=sys.stderr)

    client.on_connection_state(on_state)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(write_records, receive, out)
        async with send, client:
            task_status.started()
            await stop.wait()


async def main(path: str) -> None:
    client = RelayClient(contexts=["survey"])
    stop = trio.Event()
    with (
        open(path, "a") as out,  # noqa: ASYNC230 - opened once, before serving
        trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals,
    ):
        async with trio.open_nursery() as nursery:
            await nursery.start(run_service, client, out, stop)
            print(f"surveying calls on {client.contexts}; records go to {path}", flush=True)
            async for signum in signals:
                print(f"{signal.Signals(signum).name}: shutting down", flush=True)
                stop.set()
                break


if __name__ == "__main__":
    trio.run(main, sys.argv[1] if len(sys.argv) > 1 else "survey.jsonl")
