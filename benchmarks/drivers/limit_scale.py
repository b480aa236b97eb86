"""The limit for the scale sweep (``scale.py``: workloads S, R, M).

``limit_driver.Client`` plus what S, R and M need, with the least code possible: S
is W2's state machine with W3's hold sample and the latency of the paced events
(in ``limit_driver`` itself); R keeps the session's ``protocol``, reconnects at once
when the link drops (no backoff: the limit of a resume is the reconnect itself),
sends the protocol back, and on a refused resume forgets every call (each one a
failed wait); M sends every ``messaging.send`` in one write and counts the
``delivered`` state events of the ids the responses named. Prints one JSON line.
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any

from bench_common import CTL_DONE, CTL_DROP, CTL_START, Config, Report, Sample, parse_args
from bench_common import percentile as _percentile
from limit_driver import Client, LimitCall, client_ssl_context, run


class ScaleClient(Client):
    """See the module docstring."""

    def __init__(self, cfg: Config) -> None:
        super().__init__(cfg)
        self.protocol = ""
        self.drop: Sample | None = None
        self.reconnected = False
        self.message_ids: set[str] = set()
        self.ssl_context = client_ssl_context()  # made before the clock, as the SDKs' is

    # -- R: the session's protocol, reconnect at once --------------------------------------

    def connect_params(self) -> dict[str, Any]:
        params = super().connect_params()
        if self.protocol:
            params["protocol"] = self.protocol
        return params

    def connection_lost(self, exc: Exception | None) -> None:
        if self.workload == "R" and self.drop is not None and not self.reconnected:
            self.reconnected = True
            self.buf = bytearray()
            self.upgraded = False
            self.out = []
            asyncio.get_running_loop().create_task(self.reconnect())
            return
        super().connection_lost(exc)

    async def reconnect(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            await loop.create_connection(
                lambda: self,
                "127.0.0.1",
                self.cfg.port,
                ssl=self.ssl_context,
                server_hostname="localhost",
            )
        except OSError as exc:
            self.error(f"reconnect failed: {exc!r}")
            self.done.set()

    def on_connected(self, result: dict[str, Any]) -> None:
        protocol = result.get("protocol")
        if not isinstance(protocol, str):
            return
        if self.protocol and protocol != self.protocol:  # a fresh session: every wait fails
            for cid in [c for c in self.calls if not c.startswith("ctl-")]:
                del self.calls[cid]
                self.report.failed += 1
            self.report.mono_last = time.monotonic()
        self.protocol = protocol

    # -- results the base ignores: connect, messaging.send ---------------------------------

    def on_message(self, msg: dict[str, Any]) -> None:
        if msg.get("method") is None:
            entry = self.pending.get(msg.get("id"))  # type: ignore[arg-type]
            if entry is not None and entry[0] in ("connect", "msg"):
                del self.pending[msg["id"]]
                result = msg.get("result")
                if not isinstance(result, dict):
                    self.error(f"{entry[0]} failed: {msg!r}")
                elif entry[0] == "connect":
                    self.on_connected(result)
                else:
                    self.message_ids.add(result["message_id"])
                return
        super().on_message(msg)

    def on_event(self, event_type: str, params: dict[str, Any]) -> None:
        if event_type != "messaging.state":
            super().on_event(event_type, params)
            return
        message_id = params.get("message_id")
        if params.get("message_state") == "delivered" and message_id in self.message_ids:
            self.message_ids.discard(message_id)
            self.report.delivered += 1
            self.report.completed_callbacks += 1
            self.report.completed += 1
            if self.report.completed == self.cfg.messages:
                self.report.mono_last = time.monotonic()

    def on_result(self, what: str, call: LimitCall) -> None:
        super().on_result(what, call)
        if what == "end" and self.workload == "R":
            self.report.mono_last = time.monotonic()

    # -- control calls ---------------------------------------------------------------------

    def on_offer(self, call: LimitCall) -> None:
        cid = call.call_id
        if cid == CTL_DROP:
            self.report.held = self.held
            self.drop = Sample.take()
            self.call_request("ctl", call, "calling.end", reason="hangup")
            return
        if cid == CTL_DONE:
            if self.latencies:
                ordered = sorted(self.latencies)
                self.report.lat_n = len(ordered)
                self.report.lat_p50_us = _percentile(ordered, 50) / 1000.0
                self.report.lat_p99_us = _percentile(ordered, 99) / 1000.0
            if self.workload == "R":
                self.start = self.drop  # R's clock runs from the drop
        super().on_offer(call)
        if cid == CTL_START and self.workload == "M":
            for _ in range(self.cfg.messages):
                self.request(
                    "msg",
                    None,
                    "messaging.send",
                    {
                        "context": self.protocol or "default",
                        "to_number": "+15552220000",
                        "from_number": "+15551110000",
                        "body": "bench",
                    },
                )


def main(argv: list[str] | None = None) -> int:
    cfg = parse_args(__doc__ or "", argv)
    report: Report = asyncio.run(run(cfg, ScaleClient))
    report.emit()
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
