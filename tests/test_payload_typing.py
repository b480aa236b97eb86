"""A user's type checker sees the payload TypedDicts: typos are flagged, plain dicts pass.

Two small user programs are type-checked as a user's project would be (``mypy
--strict`` and ``pyright`` as subprocesses, on files outside this repository): one
with a misspelled key in each kind of payload, where every marked line must be
reported and nothing else; one written correctly (TypedDicts, builders, the guide's
plain dicts, flat media), which must pass clean.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
#: Type checkers cannot follow setuptools' editable-install import hook: point them at
#: the source tree (mypy reads MYPYPATH, pyright asks the interpreter for sys.path).
_SOURCE_TREE = {**os.environ, "MYPYPATH": str(ROOT), "PYTHONPATH": str(ROOT)}

MISSPELLED = """
from relay_anyio import (
    Call, CollectSpec, Device, MachineDetect, Media, PhoneDevice, RecordAudio, RelayClient,
    SipDevice, TapSpec, TTSMedia,
)

client = RelayClient("p", "t", reqest_timeout=5.0)  # flag
slow = RelayClient("p", "t", ping_interval="30")  # flag


async def handle_call(call: Call) -> None:
    agent: PhoneDevice = {"type": "phone", "params": {"to_numbr": "+15551001000"}}  # flag
    menu: CollectSpec = {"digits": {"max": 1, "digit_timout": 5.0}}  # flag
    greeting: TTSMedia = {"type": "tts", "params": {"txt": "Welcome"}}  # flag
    pbx: SipDevice = {"type": "sip", "params": {"to": "sip:a@pbx", "header": []}}  # flag
    audio: RecordAudio = {"direction": "both", "formt": "mp3"}  # flag
    amd: MachineDetect = {"type": "machine", "params": {"initial_timout": 4.5}}  # flag
    tap: TapSpec = {"type": "audio", "parms": {"direction": "both"}}  # flag
    Device.phone("+15551001000", form_="+15550000000")  # flag
    Media.tts("Welcome", vioce="Polly.Joanna")  # flag
    await call.connect([[agent, pbx]])
    await call.play([greeting])
    await call.play_and_collect([greeting], menu)
    await call.record(audio=audio)
    await call.detect(amd)
    await call.tap(tap, {"type": "rtp", "params": {"addr": "203.0.113.10", "port": 4000}})
"""

CORRECT = """
from typing import Any

from relay_anyio import (
    AILanguage, AIPrompt, Call, CollectSpec, DetectEvent, Device, DeviceSpec, MachineDetect,
    Media, MediaItem, PhoneDevice, RecordAudio, RelayClient, RelayEvent, RTPDevice, SipDevice,
    SipHeader, TapSpec, TTSMedia,
)


async def handle_call(call: Call) -> None:
    caller: str = call.from_
    called: str = call.to
    headers: tuple[SipHeader, ...] = call.headers
    account = call.device_info.header("X-Account")
    print(caller, called, headers, account, call.device_info.type)
    agent: PhoneDevice = {"type": "phone", "params": {"to_number": "+15551001000"}}
    pbx: SipDevice = {
        "type": "sip",
        "params": {"to": "sip:a@pbx", "from": "sip:b@me", "headers": [{"name": "X", "value": "1"}]},
    }
    built: DeviceSpec = Device.sip("sip:a@pbx", headers={"X-Account": "42"})
    menu: CollectSpec = {"digits": {"max": 1, "digit_timeout": 5.0}, "initial_timeout": 10.0}
    greeting: TTSMedia = {"type": "tts", "params": {"text": "Welcome", "voice": "Polly.Joanna"}}
    items: list[MediaItem] = [greeting, Media.audio("https://x/a.mp3"), Media.silence(1)]
    audio: RecordAudio = {"direction": "both", "format": "mp3", "beep": True}
    amd: MachineDetect = {"type": "machine", "params": {"initial_timeout": 4.5}}
    tap: TapSpec = {"type": "audio", "params": {"direction": "both"}}
    rtp: RTPDevice = {"type": "rtp", "params": {"addr": "203.0.113.10", "port": 4000}}
    prompt: AIPrompt = {"text": "You are helpful.", "temperature": 0.3}
    english: AILanguage = {"name": "English", "code": "en-US", "voice": "rime.spore"}
    guide: dict[str, Any] = {"type": "phone", "params": {"to_number": "+15552002000"}}

    await call.answer()
    await call.connect([[agent, pbx, built, guide]], ringback=[Media.ringtone("us")])
    await call.bridge_phone("+15551001000", "+15550000000", ring_timeout=20)
    await call.bridge_sip("sip:a@pbx", headers=[SipHeader("X-A", "1")])
    play = await call.play([*items, {"type": "tts", "text": "flat, as in the guide"}])
    await play.wait()
    await call.play_and_collect(items, menu)
    await call.play_and_collect([{"type": "tts", "text": "Press 1"}], {"digits": {"max": 1}})
    await call.record(audio=audio)
    await call.record(audio={"direction": "both", "format": "mp3"})
    await call.collect(digits={"max": 4, "digit_timeout": 5.0}, speech={"end_silence_timeout": 2})
    action = await call.detect(amd, timeout=30.0, wait_for_beep=True)
    result = await action.wait()
    assert isinstance(result, DetectEvent)
    beep: bool = result.beep or result.machine or result.human or action.machine
    print(beep)
    await call.detect_answering_machine(wait_for_beep=True)
    await call.tap(tap, rtp)
    await call.ai(prompt=prompt, languages=[english])

    def on_state(event: RelayEvent) -> None:
        print(event.params.get("call_state"))

    call.on("calling.call.state", on_state)
    call.on("calling.call.state", handler=on_state)


tuned = RelayClient(
    "p", "t", contexts=["office"], url=None, request_timeout=5, ping_timeout=None, proxy=None
)


async def place_calls(client: RelayClient) -> None:
    await client.dial([[Device.phone("+15559876543", "+15551234567", timeout=30)]])
    await client.dial([[{"type": "phone", "params": {"to_number": "+1555", "from_number": "+1"}}]])
    call = await client.dial_phone("+15559876543", "+15551234567", ring_timeout=30, timeout=45)
    sip = await client.dial_sip("sip:bob@example.com", "sip:me@example.com", codecs=["PCMU"])
    print(call.to, sip.headers)
    message = await client.send_message(to_number="+1555", from_number="+1666", body="hi")
    message.on(handler=lambda event: print(event.params))
"""


def _flagged_lines(source: str) -> set[int]:
    return {n for n, line in enumerate(source.splitlines(), 1) if line.endswith("# flag")}


@pytest.fixture(scope="module")
def programs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The two user files, in a directory of their own (a user's project, not this repo)."""
    directory = tmp_path_factory.mktemp("user_project")
    (directory / "misspelled.py").write_text(textwrap.dedent(MISSPELLED).lstrip())
    (directory / "correct.py").write_text(textwrap.dedent(CORRECT).lstrip())
    return directory


@functools.cache
def _mypy(directory: Path) -> dict[str, set[int]]:
    """Run ``mypy --strict`` once on both files: the lines with errors, by file name."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--no-error-summary",
            "--show-error-codes",
            # As an installed package's would be: relay_anyio's types are used, and
            # only the user's files are reported on.
            "--follow-imports=silent",
            "--cache-dir",
            str(directory / ".mypy_cache"),
            "misspelled.py",
            "correct.py",
        ],
        capture_output=True,
        text=True,
        cwd=directory,
        env=_SOURCE_TREE,
        timeout=240,
        check=False,
    )
    errors: dict[str, set[int]] = {"misspelled.py": set(), "correct.py": set()}
    for line in result.stdout.splitlines():
        match = re.match(r"(\w+\.py):(\d+): error: ", line)
        if match:
            errors[match.group(1)].add(int(match.group(2)))
    assert result.returncode in (0, 1), result.stdout + result.stderr
    if not any(errors.values()):
        assert result.returncode == 0, result.stdout + result.stderr
    _mypy_output[directory] = result.stdout
    return errors


_mypy_output: dict[Path, str] = {}


@pytest.mark.timeout(300)  # mypy analyses relay_anyio and its dependencies from cold
def test_mypy_flags_each_misspelled_payload_key(programs: Path) -> None:
    errors = _mypy(programs)
    source = (programs / "misspelled.py").read_text()
    assert errors["misspelled.py"] == _flagged_lines(source), _mypy_output[programs]
    assert "to_numbr" in _mypy_output[programs] and "digit_timout" in _mypy_output[programs]


@pytest.mark.timeout(300)
def test_mypy_passes_a_correct_program(programs: Path) -> None:
    errors = _mypy(programs)
    assert errors["correct.py"] == set(), _mypy_output[programs]


@pytest.mark.timeout(300)
def test_pyright_flags_the_same_lines(programs: Path) -> None:
    pyright = shutil.which("pyright", path=str(Path(sys.executable).parent))
    if pyright is None:
        pytest.fail("pyright is not installed: pip install -e '.[test]'")
    result = subprocess.run(
        [pyright, "--outputjson", "--pythonpath", sys.executable, "misspelled.py", "correct.py"],
        capture_output=True,
        text=True,
        cwd=programs,
        env=_SOURCE_TREE,
        timeout=240,
        check=False,
    )
    report = json.loads(result.stdout)
    errors: dict[str, set[int]] = {"misspelled.py": set(), "correct.py": set()}
    for diagnostic in report["generalDiagnostics"]:
        if diagnostic["severity"] == "error":
            # pyright counts lines from 0; a multi-line statement is reported where it starts.
            errors[Path(diagnostic["file"]).name].add(diagnostic["range"]["start"]["line"] + 1)
    source = (programs / "misspelled.py").read_text()
    assert errors == {"misspelled.py": _flagged_lines(source), "correct.py": set()}, result.stdout
