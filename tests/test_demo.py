"""``make demo`` / ``relay-anyio demo``: the timeline it prints, on both backends."""

from __future__ import annotations

import re

import pytest

from relay_anyio.testing._demo import run_demo

pytestmark = pytest.mark.anyio


def sections(out: str) -> dict[str, list[str]]:
    """The printed timeline split at its ``== title`` lines."""
    found: dict[str, list[str]] = {}
    current: list[str] = []
    for line in out.splitlines():
        if line.startswith("== "):
            current = found.setdefault(line[3:], [])
        elif not line.strip():
            current = []  # a blank line ends a section (the summary follows)
        else:
            current.append(line)
    return found


async def test_demo_prints_the_timeline_of_three_callers_a_voicemail_drop_and_sms(
    capsys: pytest.CaptureFixture[str],
) -> None:
    await run_demo()
    out = capsys.readouterr().out
    parts = sections(out)
    titles = list(parts)
    assert titles[0] == "session (connect, auth, dial, messaging)"
    assert [re.sub(r"^call \w+: ", "", t) for t in titles[1:]] == [
        "caller presses 1: sales",
        "caller presses 3: voicemail",
        "caller presses 7: invalid option",
        "outbound: voicemail after the beep",
    ]
    session = "\n".join(parts[titles[0]])
    assert "client -> server  signalwire.connect" in session
    assert "message_state=delivered" in session
    assert "event messaging.receive" in session

    sales, voicemail, invalid, outbound = (parts[t] for t in titles[1:])
    for call in (sales, voicemail, invalid):
        text = "\n".join(call)
        # Every call is offered, answered, recorded, prompted, and ends with a hangup.
        assert "event calling.call.receive call_state=created" in call[0]
        for expected in (
            "client -> server  calling.answer",
            "call_state=answered",
            "client -> server  calling.record",
            "client -> server  calling.play_and_collect",
            "client -> server  calling.record.stop",
            "client -> server  calling.end reason=hangup",
        ):
            assert expected in text, expected
        assert call[-1].endswith("call_state=ended end_reason=hangup")
    assert "digits=1" in "\n".join(sales)
    assert "calling.connect devices=" in "\n".join(sales)
    # The sales bridge and its peer: the handler's Bridge gave it the agent's leg, the
    # same one the timeline's events name; it followed the bridge to its end.
    [connected] = [line for line in sales if "connect_state=connected" in line]
    peer = connected.split("peer=")[1]
    sales_id = next(t for t in titles if t.endswith("sales")).split()[1].rstrip(":")
    assert f"[handler] call {sales_id}: bridged to agent leg {peer}" in out
    assert f"[handler] call {sales_id}: bridge disconnected" in out
    assert any(f"connect_state=disconnected peer={peer}" in line for line in sales)
    bridged = next(i for i, line in enumerate(sales) if "connect_state=disconnected" in line)
    assert "calling.record.stop" in sales[bridged + 1]  # the handler went on after it
    assert "digits=3" in "\n".join(voicemail)
    assert "Please leave your message" in "\n".join(voicemail)
    assert "digits=7" in "\n".join(invalid)
    assert "Invalid option" in "\n".join(invalid)
    # The outbound call: dialled, answered by a machine, spoken to after its beep.
    text = "\n".join(outbound)
    for expected in (
        "call_state=answered",
        "client -> server  calling.detect detect=",
        "detect=MACHINE",
        "detect=READY",
        "Hello, this is Acme Dental",
        "client -> server  calling.end reason=hangup",
    ):
        assert expected in text, expected
    beep = next(i for i, line in enumerate(outbound) if "detect=READY" in line)
    spoken = next(i for i, line in enumerate(outbound) if "client -> server  calling.play" in line)
    assert beep < spoken  # the message went out only after the beep
    assert outbound[-1].endswith("call_state=ended end_reason=hangup")
    outbound_id = titles[-1].split()[1].rstrip(":")
    assert f"[handler] call {outbound_id}: beep heard" in out
    assert "client -> server  calling.dial devices=" in session
    # Times are relative to the start and never go backwards within a section.
    for lines in parts.values():
        times = [
            float(line.split()[0].rstrip("s")) for line in lines if re.match(r"\s+\d+\.\d+s", line)
        ]
        assert times == sorted(times)

    assert "final state: delivered" in out
    assert "inbound MMS from +15551110000: 'Check this out' ['https://example.com/a.jpg']" in out
    assert re.search(r"\d+ frames in \d+\.\d\d s \(\d+ acks/pongs hidden", out)
    assert "test-token" not in out  # credentials never printed


async def test_demo_verbose_shows_frames_in_full_with_credentials_masked(
    capsys: pytest.CaptureFixture[str],
) -> None:
    await run_demo(verbose=True)
    out = capsys.readouterr().out
    # Every frame is also printed in full, below its summary line.
    assert '"method":"calling.play_and_collect"' in out.replace(" ", "")
    assert "client -> server  ack" in out  # nothing hidden
    assert "(all shown)" in out
    assert "test-token" not in out
