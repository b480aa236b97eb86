"""Devices as the fake server shows them: an inbound SIP offer's, a SIP leg's headers.

How RELAY carries a SIP call's headers in its events is unconfirmed (reference
§17.3): the list of ``{"name", "value"}`` the reference assumes, an object, or not at
all. ``server.sip_header_shape`` picks one, and every SIP device the fake announces
(an offer, a dialled leg, a bridge peer) goes through ``announced`` on its way out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ._switches import SIP_HEADER_SHAPES, choice

__all__ = ["announced", "sip_device"]

JSONObject = dict[str, Any]


def sip_device(
    from_uri: str, to_uri: str, headers: Mapping[str, str] | Iterable[tuple[str, str]]
) -> JSONObject:
    """An inbound SIP call's device in the reference's shape (headers as a list)."""
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    params: JSONObject = {"from": from_uri, "to": to_uri}
    items = [{"name": name, "value": value} for name, value in pairs]
    if items:
        params["headers"] = items
    return {"type": "sip", "params": params}


def announced(device: JSONObject, shape: object) -> JSONObject:
    """``device`` with its SIP headers in the ``shape`` the server uses (a copy if changed).

    Non-SIP devices, and SIP devices without a list of headers, pass unchanged.
    """
    shape = choice("sip_header_shape", shape, SIP_HEADER_SHAPES)
    params = device.get("params")
    if device.get("type") != "sip" or not isinstance(params, dict):
        return device
    headers = params.get("headers")
    if shape == "list" or not isinstance(headers, list):
        return device
    rest = {key: value for key, value in params.items() if key != "headers"}
    if shape == "object":
        rest["headers"] = {
            h["name"]: h["value"] for h in headers if isinstance(h, dict) and "name" in h
        }
    return {**device, "params": rest}
