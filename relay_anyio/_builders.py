"""Typed builders for the wire's media items, and the checks every builder shares.

A builder returns exactly the dict a user could have written by hand (the shapes of
the reference, §10), so its result can be mixed with hand-written items, printed,
stored or edited. What it adds is a checked signature (a typo is an error at the
call, and a type checker sees it) and an early, clear ``TypeError``/``ValueError``
for a value the server would reject later with a bare 400 (or, worse, accept).
Optional keys that are not given are left out, as the official helpers do.

The device builders are static methods of ``Device`` (``_devices.py``); the media
builders live in the ``Media`` namespace here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Final, final

from ._payloads import AudioMedia, RingtoneMedia, SilenceMedia, SipHeaderItem, TTSMedia

__all__ = ["Media", "check_seconds", "check_strings", "check_text", "header_items"]

_NUMBER_TYPES: Final = (int, float)


def check_text(name: str, value: object) -> str:
    """``value`` if it is a non-empty string; else a ``TypeError``/``ValueError``."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string, not {type(value).__name__}: {value!r}")
    if not value.strip():
        raise ValueError(f"{name} must not be empty")
    return value


def check_seconds(name: str, value: object, *, allow_zero: bool = False) -> float:
    """``value`` if it is a positive number of seconds (``True`` is not one)."""
    if isinstance(value, bool) or not isinstance(value, _NUMBER_TYPES):
        raise TypeError(f"{name} must be a number of seconds, not {value!r}")
    if value < 0 or (value == 0 and not allow_zero) or value != value:  # NaN
        raise ValueError(f"{name} must be {'>= 0' if allow_zero else '> 0'} seconds, not {value}")
    return value


def check_strings(name: str, values: object) -> list[str]:
    """A list of non-empty strings from an iterable of them (a bare string is refused:
    ``codecs="PCMU"`` would otherwise become ``["P", "C", "M", "U"]``)."""
    if isinstance(values, str | bytes) or not isinstance(values, Iterable):
        raise TypeError(f"{name} must be a list of strings, not {values!r}")
    return [check_text(f"each of {name}", value) for value in values]


@final
class Media:
    """Builders of media items for ``play``, ``play_and_collect`` and ``ringback``.

    ``Media.tts("Hello", voice="Polly.Joanna")`` is exactly
    ``{"type": "tts", "params": {"text": "Hello", "voice": "Polly.Joanna"}}``: items
    from here and hand-written ones (flat, as in the guide, or nested) mix freely in
    one list. A namespace, not a value class: there is nothing to hold but the dict.
    """

    def __init__(self) -> None:
        raise TypeError("Media is a namespace of builders: call Media.tts(...) etc.")

    @staticmethod
    def tts(
        text: str,
        *,
        language: str | None = None,
        gender: str | None = None,
        voice: str | None = None,
    ) -> TTSMedia:
        """Speak ``text`` (``language`` e.g. ``"en-US"``, ``gender`` ``"male"``/``"female"``,
        ``voice`` a provider's voice name)."""
        item: TTSMedia = {"type": "tts", "params": {"text": check_text("text", text)}}
        if language is not None:
            item["params"]["language"] = check_text("language", language)
        if gender is not None:
            item["params"]["gender"] = check_text("gender", gender)
        if voice is not None:
            item["params"]["voice"] = check_text("voice", voice)
        return item

    @staticmethod
    def audio(url: str) -> AudioMedia:
        """Play the audio file at ``url`` (mp3 or wav, over http(s))."""
        return {"type": "audio", "params": {"url": check_text("url", url)}}

    @staticmethod
    def silence(seconds: float) -> SilenceMedia:
        """A pause of ``seconds`` (sent as ``duration``)."""
        return {"type": "silence", "params": {"duration": check_seconds("seconds", seconds)}}

    @staticmethod
    def ringtone(name: str, *, duration: float | None = None) -> RingtoneMedia:
        """The ringtone of country ``name`` (``"us"``, ``"uk"``...), ``duration`` seconds if
        given (else as long as it is played, e.g. while a bridge rings)."""
        item: RingtoneMedia = {"type": "ringtone", "params": {"name": check_text("name", name)}}
        if duration is not None:
            item["params"]["duration"] = check_seconds("duration", duration)
        return item


def header_items(headers: object) -> list[SipHeaderItem]:
    """SIP headers as the wire's list of ``{"name", "value"}``, from the forms users write.

    Accepted: a mapping ``{"X-Account": "42"}``, or an iterable of wire dicts
    (``{"name": ..., "value": ...}``) or of objects with ``name`` and ``value``
    (``SipHeader``). Names must be non-empty strings, values strings.
    """
    if isinstance(headers, Mapping):
        pairs: Iterable[tuple[object, object]] = headers.items()
    elif isinstance(headers, str | bytes) or not isinstance(headers, Iterable):
        raise TypeError(f"headers must be a mapping or a list of headers, not {headers!r}")
    else:
        pairs = [_header_pair(item) for item in headers]
    items: list[SipHeaderItem] = []
    for name, value in pairs:
        if not isinstance(value, str):
            raise TypeError(f"SIP header {name!r}: the value must be a string, not {value!r}")
        items.append({"name": check_text("a SIP header name", name), "value": value})
    return items


def _header_pair(item: object) -> tuple[object, object]:
    if isinstance(item, Mapping):
        if set(item) != {"name", "value"}:
            raise ValueError(f"a SIP header needs exactly 'name' and 'value': {item!r}")
        return item["name"], item["value"]
    name, value = getattr(item, "name", None), getattr(item, "value", None)
    if name is None or value is None:
        raise TypeError(f"not a SIP header (a name and a value): {item!r}")
    return name, value
