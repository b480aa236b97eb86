"""Tests of my_ivr.py: simulated callers press keys; we check what they heard and got.

Run with ``pytest test_my_ivr.py``. The ``relay_server`` fixture (a FakeRelayServer on
a loopback port) comes with relay-anyio: installing the package registers its pytest
plugin. Each test runs on asyncio and on trio.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
from my_ivr import (
    BEEP,
    MENU,
    SALES,
    SALES_NUMBER,
    SORRY,
    STAFF_NUMBER,
    THANKS,
    build_client,
)

from relay_anyio.testing import FakeCall, FakeRelayServer

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> Any:
    """Run every test on both event loops (drop "trio" if your app is asyncio-only)."""
    return request.param


def spoken(call: FakeCall) -> list[str]:
    """Every text-to-speech prompt the app played on ``call``, in order."""
    return [
        item["params"]["text"]
        for request in call.requests
        if request["method"] in ("calling.play", "calling.play_and_collect")
        for item in request["params"]["play"]
        if item["type"] == "tts"
    ]


async def test_pressing_1_connects_to_sales(relay_server: FakeRelayServer) -> None:
    async with build_client(**relay_server.client_kwargs()):
        caller = await relay_server.offer_call("main-ivr", from_number="+15557654321")
        caller.script_digits("1")  # the next collect on this call gets "1"
        connect = await relay_server.wait_for_request("calling.connect")

    assert spoken(caller) == [MENU, SALES]
    [[device]] = connect["params"]["devices"]
    assert device["params"]["to_number"] == SALES_NUMBER


async def test_pressing_2_records_a_voicemail_and_texts_the_staff(
    relay_server: FakeRelayServer,
) -> None:
    relay_server.record_duration = 0.1  # the caller speaks 0.1 s, then silence ends it
    async with build_client(**relay_server.client_kwargs()):
        caller = await relay_server.offer_call("main-ivr", from_number="+15557654321")
        caller.script_digits("2")
        await caller.wait_for_state("ended")

    assert spoken(caller) == [MENU, BEEP, THANKS]
    [record] = relay_server.received("calling.record")
    assert record["params"]["record"]["audio"]["direction"] == "listen"
    [sms] = relay_server.received("messaging.send")
    assert sms["params"]["to_number"] == STAFF_NUMBER
    assert sms["params"]["body"].startswith("Voicemail from +15557654321: https://")
    assert record["params"]["control_id"] in sms["params"]["body"]  # the recording's URL
    assert caller.end_reason == "hangup"


async def test_no_key_says_goodbye(relay_server: FakeRelayServer) -> None:
    async with build_client(**relay_server.client_kwargs()):
        caller = await relay_server.offer_call("main-ivr")  # presses nothing: no_input
        await caller.wait_for_state("ended")

    assert spoken(caller) == [MENU, SORRY]
    assert relay_server.received("messaging.send") == []


async def test_caller_hanging_up_during_the_menu_is_not_an_error(
    relay_server: FakeRelayServer, caplog: pytest.LogCaptureFixture
) -> None:
    relay_server.play_duration = 60  # the menu is still playing when the caller leaves
    async with build_client(**relay_server.client_kwargs()) as client:
        caller = await relay_server.offer_call("main-ivr")
        await relay_server.wait_for_request("calling.play_and_collect")
        await caller.remote_hangup()
        # The menu's wait ends with the call: the handler goes on without hanging.
        await relay_server.wait_until(lambda: client.active_calls == 0)

    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
