"""The public surface: pinned names, nothing private leaking, every symbol typed.

``__all__`` is the contract: adding or removing a public name is a deliberate change to
this file (and to CHANGELOG.md), never an accident of an import. The type-completeness
check runs ``pyright --verifytypes`` on the installed package, the check anyio and
trio use, so a user's type checker sees a declared type for everything public.
"""

from __future__ import annotations

import functools
import inspect
import json
import os
import re
import shutil
import subprocess
import sys
import types
from pathlib import Path
from typing import Any, TypeVar

import pytest

import relay_anyio
import relay_anyio.lowlevel
import relay_anyio.testing
import relay_anyio.testing.pytest_plugin

ROOT = Path(__file__).resolve().parent.parent

EXPECTED_ALL = [
    "AIAction",
    "AIEvent",
    "AILanguage",
    "AIPrompt",
    "Action",
    "AudioMedia",
    "AudioParams",
    "AuthenticationError",
    "Bridge",
    "BridgeFailed",
    "BridgeTimeout",
    "CALL_STATE_ANSWERED",
    "CALL_STATE_CREATED",
    "CALL_STATE_ENDED",
    "CALL_STATE_ENDING",
    "CALL_STATE_RINGING",
    "CONNECT_STATE_CONNECTED",
    "CONNECT_STATE_CONNECTING",
    "CONNECT_STATE_DISCONNECTED",
    "CONNECT_STATE_FAILED",
    "Call",
    "CallEnded",
    "CallReceiveEvent",
    "CallStateEvent",
    "CallingErrorEvent",
    "ClientOptions",
    "CollectAction",
    "CollectEvent",
    "CollectResult",
    "CollectSpec",
    "ConferenceEvent",
    "ConnectEvent",
    "ConnectionLost",
    "ConnectionState",
    "DenoiseEvent",
    "DetectAction",
    "DetectEvent",
    "DetectResult",
    "DetectSpec",
    "Device",
    "DeviceSpec",
    "DialCallInfo",
    "DialEvent",
    "DialTimeout",
    "DigitDetect",
    "DigitDetectParams",
    "DigitsSpec",
    "END_REASON_ABANDONED",
    "END_REASON_BUSY",
    "END_REASON_CANCEL",
    "END_REASON_DECLINE",
    "END_REASON_ERROR",
    "END_REASON_HANGUP",
    "END_REASON_MAX_DURATION",
    "END_REASON_NOT_FOUND",
    "END_REASON_NO_ANSWER",
    "EVENT_CALLING_ERROR",
    "EVENT_CALL_AI",
    "EVENT_CALL_COLLECT",
    "EVENT_CALL_CONNECT",
    "EVENT_CALL_DENOISE",
    "EVENT_CALL_DETECT",
    "EVENT_CALL_DIAL",
    "EVENT_CALL_ECHO",
    "EVENT_CALL_FAX",
    "EVENT_CALL_HOLD",
    "EVENT_CALL_PAY",
    "EVENT_CALL_PLAY",
    "EVENT_CALL_QUEUE",
    "EVENT_CALL_RECEIVE",
    "EVENT_CALL_RECORD",
    "EVENT_CALL_REFER",
    "EVENT_CALL_SEND_DIGITS",
    "EVENT_CALL_STATE",
    "EVENT_CALL_STREAM",
    "EVENT_CALL_TAP",
    "EVENT_CALL_TRANSCRIBE",
    "EVENT_CONFERENCE",
    "EVENT_MESSAGING_RECEIVE",
    "EVENT_MESSAGING_STATE",
    "EVENT_TASK",
    "EchoEvent",
    "EventOverflow",
    "EventStream",
    "FaxAction",
    "FaxDetect",
    "FaxDetectParams",
    "FaxEvent",
    "Health",
    "HoldEvent",
    "JsonFormatter",
    "ListenerHandle",
    "MESSAGE_STATE_DELIVERED",
    "MESSAGE_STATE_FAILED",
    "MESSAGE_STATE_INITIATED",
    "MESSAGE_STATE_QUEUED",
    "MESSAGE_STATE_RECEIVED",
    "MESSAGE_STATE_SENT",
    "MESSAGE_STATE_UNDELIVERED",
    "MachineDetect",
    "MachineDetectParams",
    "Media",
    "MediaItem",
    "Message",
    "MessageExpired",
    "MessageReceiveEvent",
    "MessageStateEvent",
    "OpenTelemetry",
    "PayAction",
    "PayEvent",
    "PeerInfo",
    "PhoneDevice",
    "PhoneParams",
    "PlayAction",
    "PlayEvent",
    "ProtocolError",
    "QueueEvent",
    "RTPDevice",
    "RTPParams",
    "RecordAction",
    "RecordAudio",
    "RecordEvent",
    "ReferEvent",
    "RelayClient",
    "RelayError",
    "RelayEvent",
    "RepeatFilter",
    "RequestTimeout",
    "RingtoneMedia",
    "RingtoneParams",
    "SendDigitsEvent",
    "SilenceMedia",
    "SilenceParams",
    "SipDevice",
    "SipHeader",
    "SipHeaderItem",
    "SipParams",
    "SpeechSpec",
    "StandaloneCollectAction",
    "StreamAction",
    "StreamEvent",
    "TTSMedia",
    "TTSParams",
    "TapAction",
    "TapDevice",
    "TapEvent",
    "TapParams",
    "TapSpec",
    "TaskEvent",
    "Telemetry",
    "TranscribeAction",
    "TranscribeEvent",
    "TransportError",
    "WSDevice",
    "WSParams",
    "WebRTCDevice",
    "WebRTCParams",
    "__version__",
    "configure_logging",
    "parse_event",
    "send_task",
    "serve_health",
]

EXPECTED_TESTING_ALL = [
    "AUTH_FAILED_CODE",
    "AUTH_FAILED_ERROR_CODE",
    "AUTH_FAILED_MESSAGE",
    "DEFAULT_HANDLERS",
    "DialScript",
    "FakeAction",
    "FakeCall",
    "FakeRelayServer",
    "FakeSession",
    "FakeTask",
    "FollowUp",
    "Handler",
    "HandlerContext",
    "InvalidRequestError",
    "JournalEntry",
    "JsonRpcError",
    "MessageScript",
    "NOT_AUTHENTICATED_CODE",
    "NOT_AUTHENTICATED_MESSAGE",
    "ResultCodeError",
    "calling_default",
    "messaging_send",
    "ok",
    "script_message",
]

EXPECTED_LOWLEVEL_ALL = [
    "Backoff",
    "ConnectionState",
    "GiveUp",
    "MemoryClose",
    "MemoryItem",
    "MemoryTransport",
    "MessageTransport",
    "Session",
    "SessionListener",
    "SessionOptions",
    "TransportName",
    "WebSocket",
    "accept_websocket",
    "check_result",
    "memory_transport_pair",
    "open_transport",
    "open_websocket",
]

#: Symbols ``pyright --verifytypes`` may report: none, the public surface is complete.
KNOWN_TYPE_GAPS: frozenset[str] = frozenset()
#: Every public symbol has a declared type.
TYPE_COMPLETENESS_FLOOR = 1.0


@pytest.mark.parametrize(
    ("module", "expected"),
    [
        (relay_anyio, EXPECTED_ALL),
        (relay_anyio.testing, EXPECTED_TESTING_ALL),
        (relay_anyio.lowlevel, EXPECTED_LOWLEVEL_ALL),
    ],
    ids=["relay_anyio", "relay_anyio.testing", "relay_anyio.lowlevel"],
)
def test_all_is_pinned(module: types.ModuleType, expected: list[str]) -> None:
    assert sorted(module.__all__) == expected
    assert len(set(module.__all__)) == len(module.__all__), "duplicate names in __all__"


@pytest.mark.parametrize(
    "module",
    [relay_anyio, relay_anyio.testing, relay_anyio.lowlevel],
    ids=lambda m: m.__name__,
)
def test_every_name_resolves_and_nothing_private_leaks(module: types.ModuleType) -> None:
    for name in module.__all__:
        assert hasattr(module, name), f"{module.__name__}.{name} is in __all__ but missing"
        assert not name.startswith("_") or name == "__version__", name
    # Every public-looking attribute is either exported or a public submodule.
    # (Names that are not identifiers, such as the "@py_builtins" pytest's assertion
    # rewriting sometimes leaves in an imported module, cannot be written by users.)
    stray = [
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and name.isidentifier()
        and name not in module.__all__
        and not (isinstance(value, types.ModuleType) and value.__name__.startswith(module.__name__))
    ]
    assert stray == [], f"public names not in __all__: {stray}"


def test_exported_objects_are_public_and_documented() -> None:
    """Classes and functions are exported under their own name, with a docstring.

    (Their defining modules are private: ``relay_anyio._call`` is an implementation
    detail, ``relay_anyio.Call`` is the name users write.)
    """
    for module in (relay_anyio, relay_anyio.testing, relay_anyio.lowlevel):
        for name in module.__all__:
            value = getattr(module, name)
            if inspect.isclass(value) or inspect.isfunction(value):
                assert value.__name__ == name, f"{name} is {value.__name__} under another name"
                assert value.__module__.startswith("relay_anyio"), name
                assert inspect.getdoc(value), f"{name}: no docstring, own or inherited"


def test_private_submodules_are_not_exported() -> None:
    assert not any(name.startswith("_") and name != "__version__" for name in relay_anyio.__all__)
    assert isinstance(relay_anyio.__version__, str) and relay_anyio.__version__
    assert relay_anyio.testing.pytest_plugin.__all__ == ["relay_server", "relay_server_tls"]


def test_py_typed_marker_ships() -> None:
    assert (Path(relay_anyio.__file__).parent / "py.typed").is_file()


@functools.cache
def _verifytypes() -> dict[str, Any]:
    pyright = shutil.which("pyright", path=str(Path(sys.executable).parent))
    if pyright is None:
        pytest.fail("pyright is not installed: pip install -e '.[test]'")
    # pyright cannot follow setuptools' editable-install import hook; PYTHONPATH puts
    # the source tree on the interpreter's sys.path, which pyright asks it for.
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [
            pyright,
            "--verifytypes",
            "relay_anyio",
            "--ignoreexternal",
            "--outputjson",
            "--pythonpath",
            sys.executable,
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=240,
        check=False,
    )
    try:
        report: dict[str, Any] = json.loads(result.stdout)
    except ValueError:
        pytest.fail(f"pyright did not run: {result.stdout[-2000:]} {result.stderr[-2000:]}")
    return report


#: TypedDicts that must use the functional syntax (a key is a Python keyword: the
#: ``"from"`` of SIP and WebRTC devices), which has no docstring pyright can read;
#: the classes built on them carry the documentation.
_FUNCTIONAL_TYPEDDICTS = frozenset({"relay_anyio._payloads._From"})


@pytest.mark.timeout(300)
def test_every_public_function_and_class_has_a_docstring() -> None:
    """What ``pyright --verifytypes`` counts: functions and classes users can reach,
    their methods included. (The ``__converterDescriptor`` classes are pyright's own
    synthesis for an attrs ``converter=``, not code anyone wrote.)"""
    undocumented = sorted(
        symbol["name"]
        for symbol in _verifytypes()["typeCompleteness"]["symbols"]
        if "__converterDescriptor" not in symbol["name"]
        and symbol["name"] not in _FUNCTIONAL_TYPEDDICTS
        and any("No docstring found" in d["message"] for d in symbol["diagnostics"])
    )
    assert undocumented == []


@pytest.mark.timeout(300)  # pyright runs here (16 s seen on a loaded machine)
def test_public_surface_is_type_complete() -> None:
    report = _verifytypes()["typeCompleteness"]
    assert report["pyTypedPath"], "pyright found no py.typed: it looked at the wrong package"
    assert report["packageRootDirectory"] == str(ROOT / "relay_anyio")
    gaps = {
        symbol["name"]
        for symbol in report["symbols"]
        if any(d["severity"] == "error" for d in symbol["diagnostics"])
    }
    new = sorted(gaps - KNOWN_TYPE_GAPS)
    assert new == [], (
        f"public symbols without a declared type: {new}; annotate them where they are "
        "assigned (e.g. `self.play_duration: float = 0.0`)"
    )
    fixed = sorted(KNOWN_TYPE_GAPS - gaps)
    if fixed:
        print(f"type gaps fixed, remove them from KNOWN_TYPE_GAPS: {fixed}")  # noqa: T201
    assert report["completenessScore"] >= TYPE_COMPLETENESS_FLOOR


def _public_callables() -> list[tuple[str, Any]]:
    found: list[tuple[str, Any]] = []
    for module in (relay_anyio, relay_anyio.testing, relay_anyio.lowlevel):
        for name in module.__all__:
            value = getattr(module, name)
            if inspect.isfunction(value):
                found.append((f"{module.__name__}.{name}", value))
            elif inspect.isclass(value):
                for attr, member in vars(value).items():
                    if attr.startswith("_") and attr != "__init__":
                        continue
                    if isinstance(member, staticmethod | classmethod):
                        member = member.__func__
                    if isinstance(member, property):
                        member = member.fget
                    if inspect.isfunction(member):
                        found.append((f"{module.__name__}.{name}.{attr}", member))
    return found


def test_no_private_type_appears_in_a_public_signature() -> None:
    """A user reading a signature (or their IDE) must find every type it names among
    the public names: ``Call(client: _Requester)`` would send them into internals."""
    private_name = re.compile(r"(?<![\w.])_[A-Za-z]\w*")
    offenders = []
    for qualname, function in _public_callables():
        for param, annotation in function.__annotations__.items():
            text = annotation if isinstance(annotation, str) else repr(annotation)
            for name in private_name.findall(text):
                # A type variable's name is a placeholder, private by convention.
                if not isinstance(function.__globals__.get(name), TypeVar):
                    offenders.append(f"{qualname}({param}: {text})")
    assert offenders == []
    assert len(_public_callables()) > 200  # the walk sees the surface
