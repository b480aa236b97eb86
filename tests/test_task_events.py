"""``TaskEvent`` (pure): both envelope shapes of §17.1, and odd values read leniently."""

from __future__ import annotations

from typing import Any

import pytest

from relay_anyio import EVENT_TASK, RelayEvent, TaskEvent, parse_event

TS = 1733226000.123
MESSAGE = {"job": "print", "copies": 2}


def flat(**fields: Any) -> dict[str, Any]:
    """The shape SignalWire's TS SDK types: the task's fields next to ``event_type``."""
    return {"event_type": EVENT_TASK, "timestamp": TS, "space_id": "s", "project_id": "p", **fields}


def nested(**fields: Any) -> dict[str, Any]:
    """The calling-event shape, in case the server nests them (unconfirmed)."""
    return {"event_type": EVENT_TASK, "timestamp": TS, "params": fields}


def test_the_flat_shape() -> None:
    payload = flat(context="office", message=MESSAGE)
    event = parse_event(payload)
    assert type(event) is TaskEvent
    assert (event.context, event.message, event.timestamp) == ("office", MESSAGE, TS)
    assert (event.space_id, event.project_id) == ("s", "p")
    assert event.raw_params is payload  # everything that arrived stays reachable


def test_the_nested_shape() -> None:
    payload = nested(context="office", message=MESSAGE)
    event = parse_event(payload)
    assert type(event) is TaskEvent
    assert (event.context, event.message, event.timestamp) == ("office", MESSAGE, TS)
    assert event.raw_params is payload["params"]


@pytest.mark.parametrize("shape", [flat, nested])
def test_from_payload_reads_both_shapes(shape: Any) -> None:
    event = TaskEvent.from_payload(shape(context="office", message=MESSAGE))
    assert (event.context, event.message) == ("office", MESSAGE)


@pytest.mark.parametrize(
    ("fields", "context", "message"),
    [
        ({}, "", {}),
        ({"context": 7, "message": ["a", "list"]}, "", {}),
        ({"context": "office", "message": "text"}, "office", {}),
        ({"context": None, "message": None}, "", {}),
    ],
)
@pytest.mark.parametrize("shape", [flat, nested])
def test_odd_values_read_as_defaults_and_stay_in_raw_params(
    shape: Any, fields: dict[str, Any], context: str, message: dict[str, Any]
) -> None:
    event = parse_event(shape(**fields))
    assert isinstance(event, TaskEvent)
    assert (event.context, event.message) == (context, message)
    for key, value in fields.items():
        assert event.raw_params[key] == value


def test_other_events_still_ignore_outer_fields() -> None:
    # Only task events read data next to event_type; a calling event without inner
    # params keeps reading as empty, as before.
    event = parse_event({"event_type": "calling.call.state", "call_id": "c", "timestamp": TS})
    assert event.call_id == ""
    assert type(event) is not RelayEvent
