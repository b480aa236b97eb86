"""The call-control examples, run as a user runs them: processes over TLS, env-configured.

``examples/voicemail_drop.py`` dials, waits for the beep and speaks only after it;
``examples/sip_reception.py`` routes SIP callers by their headers and phone callers by a
menu. Both must also pass ``mypy --strict`` (their payloads are typed).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest

from relay_anyio.testing import DEFAULT_HANDLERS, FakeRelayServer, HandlerContext

from .test_examples import EXAMPLES, interrupt, methods, open_example, params

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parent.parent
JSON = dict[str, Any]
TO, FROM = "+15559876543", "+15551234567"
REMINDER = [
    {
        "type": "tts",
        "params": {
            "text": "This is Acme Dental with a reminder of your appointment tomorrow at ten."
        },
    },
    {"type": "silence", "params": {"duration": 0.5}},
    {"type": "tts", "params": {"text": "To reschedule, call us back at 555 0100. Goodbye."}},
]


def answer_detects_as(server: FakeRelayServer, who: str) -> None:
    """The dialled callee's detector hears ``who``: a machine (greeting, then beep) or
    a human (the leg only exists once dialled, so its script goes in at the detect)."""
    default = DEFAULT_HANDLERS["calling.detect"]

    async def detect(ctx: HandlerContext, detect_params: JSON) -> JSON:
        if who == "machine":
            ctx.call.script_answering_machine(greeting=0.2)
        else:
            ctx.call.script_detect("HUMAN")
        return await default(ctx, detect_params)

    server.set_handler("calling.detect", detect)


def journal_index(server: FakeRelayServer, direction: str, match: Any) -> int:
    return next(
        i
        for i, entry in enumerate(server.journal)
        if entry.direction == direction and isinstance(entry.frame, dict) and match(entry.frame)
    )


def is_ready_event(frame: JSON) -> bool:
    inner = frame.get("params", {}).get("params", {})
    return bool(inner.get("detect", {}).get("params", {}).get("event") == "READY")


@pytest.mark.parametrize(
    ("who", "outcome", "hello"),
    [
        ("machine", "voicemail", "Hello, this is a message for you."),
        ("human", "human", "Hello!"),
    ],
)
async def test_voicemail_drop_speaks_after_the_beep(
    relay_server_tls: FakeRelayServer, env: dict[str, str], who: str, outcome: str, hello: str
) -> None:
    server = relay_server_tls
    answer_detects_as(server, who)
    with anyio.fail_after(60):  # a failure detector only
        result = await anyio.run_process(
            [sys.executable, str(EXAMPLES / "voicemail_drop.py"), TO, FROM], env=env, check=False
        )
    out = result.stdout.decode()
    assert result.returncode == 0, out + result.stderr.decode()
    assert out == f"{TO}: {outcome}\n"
    [dial] = server.received("calling.dial")
    assert dial["params"]["devices"] == [
        [{"type": "phone", "params": {"to_number": TO, "from_number": FROM, "timeout": 30}}]
    ]
    [leg] = [call for call in server.calls.values() if call.requests]
    await server.wait_until(lambda: leg.state == "ended")
    assert methods(leg) == ["calling.detect", "calling.play", "calling.end"]
    detect, play = params(leg.requests[0]), params(leg.requests[1])
    assert detect == {
        "control_id": detect["control_id"],
        "detect": {"type": "machine", "params": {}},
        "timeout": 45,
    }
    assert play["play"] == [{"type": "tts", "params": {"text": hello}}, *REMINDER]
    if who == "machine":  # the message went out only once the greeting was over
        beep = journal_index(server, "out", is_ready_event)
        spoken = journal_index(server, "in", lambda f: f.get("method") == "calling.play")
        assert beep < spoken


async def test_sip_reception_routes_by_header_and_by_menu(
    relay_server_tls: FakeRelayServer, env: dict[str, str]
) -> None:
    server = relay_server_tls
    async with open_example("sip_reception.py", env) as process:
        await server.wait_for_session(timeout=10)
        pbx = await server.offer_sip_call(
            "reception",
            from_uri="sip:frontdesk@customer.example",
            to_uri="sip:reception@acme.example",
            headers={"X-Account": "42", "X-Priority": "high"},
        )
        await server.wait_until(lambda: pbx.connect_state == "connected", timeout=10)
        await pbx.remote_hangup()
        caller = await server.offer_call("reception", from_number="+15557654321")
        caller.script_digits("2")
        await server.wait_until(lambda: caller.connect_state == "connected", timeout=10)
        await caller.remote_hangup()
        out = await interrupt(process, server)
    assert methods(pbx) == ["calling.answer", "calling.connect"]
    assert params(pbx.requests[1]) == {
        "devices": [
            [
                {
                    "type": "sip",
                    "params": {
                        "to": "sip:accounts@pbx.example.com",
                        "headers": [
                            {"name": "X-Account", "value": "42"},
                            {"name": "X-Priority", "value": "high"},
                        ],
                    },
                }
            ]
        ],
        "ringback": [{"type": "ringtone", "params": {"name": "us"}}],
    }
    assert methods(caller) == ["calling.answer", "calling.play_and_collect", "calling.connect"]
    menu = params(caller.requests[1])
    assert menu["collect"] == {"digits": {"max": 1, "digit_timeout": 5.0}, "initial_timeout": 10.0}
    assert params(caller.requests[2])["devices"] == [
        [{"type": "phone", "params": {"to_number": "+15552002000", "timeout": 20}}]
    ]
    assert out.splitlines() == [
        "sip call from sip:frontdesk@customer.example to sip:reception@acme.example",
        "  X-Account: 42",
        "  X-Priority: high",
        "bridge: connecting",
        "bridge: connected",
        "bridge: disconnected",
        "phone call from +15557654321 to +15552220000",
        "bridge: connecting",
        "bridge: connected",
        "bridge: disconnected",
    ]


@pytest.mark.timeout(300)  # mypy --strict, cold cache
def test_the_call_control_examples_type_check(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--follow-imports=silent",
            "--cache-dir",
            str(tmp_path / ".mypy_cache"),
            "voicemail_drop.py",
            "sip_reception.py",
            "bridge_with_peer.py",
        ],
        cwd=EXAMPLES,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
        # mypy cannot see through setuptools' editable-install hook: point it at the tree.
        env={**os.environ, "MYPYPATH": str(ROOT)},
    )
    assert result.returncode == 0, result.stdout + result.stderr
