"""Media commands of a call: play, record, collect and detect, each an action handle."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ._actions import (
    CollectAction,
    CompletedCallback,
    DetectAction,
    PlayAction,
    RecordAction,
    StandaloneCollectAction,
)
from ._commands import CommandCore, drop_none, normalize_media

__all__ = ["MediaCommands"]


class MediaCommands(CommandCore):
    """Play media, record, collect digits or speech, detect machines, fax tones, digits."""

    async def play(
        self,
        media: Sequence[Mapping[str, Any]],
        *,
        volume: float | None = None,
        direction: str | None = None,
        loop: int | None = None,
        control_id: str | None = None,
        on_completed: CompletedCallback | None = None,
        **kwargs: Any,
    ) -> PlayAction:
        """Play media (tts, audio, silence, ringtone), flat or wire-shaped items."""
        params = {
            "play": normalize_media(media),
            **drop_none(volume=volume, direction=direction, loop=loop),
            **kwargs,
        }
        action = PlayAction(self, self._control_id(control_id), on_completed)
        return await self._start(action, "calling.play", params)

    async def play_tts(
        self,
        text: str,
        *,
        language: str | None = None,
        gender: str | None = None,
        voice: str | None = None,
        volume: float | None = None,
        control_id: str | None = None,
        on_completed: CompletedCallback | None = None,
    ) -> PlayAction:
        """Speak ``text``: ``play`` with one TTS item (``language``, ``gender``, ``voice`` as the
        wire has them).
        """
        item = {
            "type": "tts",
            "params": drop_none(text=text, language=language, gender=gender, voice=voice),
        }
        return await self.play(
            [item], volume=volume, control_id=control_id, on_completed=on_completed
        )

    async def play_audio(
        self,
        url: str,
        *,
        volume: float | None = None,
        control_id: str | None = None,
        on_completed: CompletedCallback | None = None,
    ) -> PlayAction:
        """Play the audio file at ``url``: ``play`` with one audio item."""
        return await self.play(
            [{"type": "audio", "params": {"url": url}}],
            volume=volume,
            control_id=control_id,
            on_completed=on_completed,
        )

    async def play_silence(
        self,
        duration: float,
        *,
        control_id: str | None = None,
        on_completed: CompletedCallback | None = None,
    ) -> PlayAction:
        """Play ``duration`` seconds of silence: ``play`` with one silence item."""
        return await self.play(
            [{"type": "silence", "params": {"duration": duration}}],
            control_id=control_id,
            on_completed=on_completed,
        )

    async def play_ringtone(
        self,
        name: str,
        *,
        duration: float | None = None,
        volume: float | None = None,
        control_id: str | None = None,
        on_completed: CompletedCallback | None = None,
    ) -> PlayAction:
        """Play the ringtone ``name`` (``"us"``, ``"uk"``...), for ``duration`` seconds if given."""
        item = {"type": "ringtone", "params": drop_none(name=name, duration=duration)}
        return await self.play(
            [item], volume=volume, control_id=control_id, on_completed=on_completed
        )

    async def record(
        self,
        audio: Mapping[str, Any] | None = None,
        *,
        control_id: str | None = None,
        on_completed: CompletedCallback | None = None,
        **kwargs: Any,
    ) -> RecordAction:
        """Record the call; ``audio`` is the audio spec (format, direction, beep...)."""
        params = {"record": {"audio": dict(audio or {})}, **kwargs}
        action = RecordAction(self, self._control_id(control_id), on_completed)
        return await self._start(action, "calling.record", params)

    async def play_and_collect(
        self,
        media: Sequence[Mapping[str, Any]],
        collect: Mapping[str, Any],
        *,
        volume: float | None = None,
        control_id: str | None = None,
        on_completed: CompletedCallback | None = None,
        **kwargs: Any,
    ) -> CollectAction:
        """Play a prompt and collect digits or speech; ``wait()`` gives the final result."""
        params = {
            "play": normalize_media(media),
            "collect": dict(collect),
            **drop_none(volume=volume),
            **kwargs,
        }
        action = CollectAction(self, self._control_id(control_id), on_completed)
        return await self._start(action, "calling.play_and_collect", params)

    async def prompt_tts(
        self,
        text: str,
        collect: Mapping[str, Any],
        *,
        language: str | None = None,
        gender: str | None = None,
        voice: str | None = None,
        volume: float | None = None,
        control_id: str | None = None,
        on_completed: CompletedCallback | None = None,
    ) -> CollectAction:
        """Speak ``text`` and collect input by ``collect`` rules: ``play_and_collect`` with one TTS
        item.
        """
        item = {
            "type": "tts",
            "params": drop_none(text=text, language=language, gender=gender, voice=voice),
        }
        return await self.play_and_collect(
            [item], collect, volume=volume, control_id=control_id, on_completed=on_completed
        )

    async def prompt_audio(
        self,
        url: str,
        collect: Mapping[str, Any],
        *,
        volume: float | None = None,
        control_id: str | None = None,
        on_completed: CompletedCallback | None = None,
    ) -> CollectAction:
        """Play ``url`` and collect input by ``collect`` rules: ``play_and_collect`` with one audio
        item.
        """
        return await self.play_and_collect(
            [{"type": "audio", "params": {"url": url}}],
            collect,
            volume=volume,
            control_id=control_id,
            on_completed=on_completed,
        )

    async def collect(
        self,
        *,
        digits: Mapping[str, Any] | None = None,
        speech: Mapping[str, Any] | None = None,
        initial_timeout: float | None = None,
        partial_results: bool | None = None,
        continuous: bool | None = None,
        send_start_of_input: bool | None = None,
        start_input_timers: bool | None = None,
        control_id: str | None = None,
        on_completed: CompletedCallback | None = None,
        **kwargs: Any,
    ) -> StandaloneCollectAction:
        """Collect digits and/or speech without a prompt."""
        if digits is None and speech is None:
            raise ValueError("collect() needs digits=, speech= or both")
        params = {
            **drop_none(
                digits=dict(digits) if digits is not None else None,
                speech=dict(speech) if speech is not None else None,
                initial_timeout=initial_timeout,
                partial_results=partial_results,
                continuous=continuous,
                send_start_of_input=send_start_of_input,
                start_input_timers=start_input_timers,
            ),
            **kwargs,
        }
        action = StandaloneCollectAction(self, self._control_id(control_id), on_completed)
        return await self._start(action, "calling.collect", params)

    async def detect(
        self,
        detect: Mapping[str, Any],
        *,
        timeout: float | None = None,
        control_id: str | None = None,
        on_completed: CompletedCallback | None = None,
        **kwargs: Any,
    ) -> DetectAction:
        """Start a detector (machine, fax, digit); ``wait()`` gives the first result."""
        params = {"detect": dict(detect), **drop_none(timeout=timeout), **kwargs}
        action = DetectAction(self, self._control_id(control_id), on_completed)
        return await self._start(action, "calling.detect", params)

    async def detect_answering_machine(
        self,
        *,
        initial_timeout: float | None = None,
        end_silence_timeout: float | None = None,
        machine_ready_timeout: float | None = None,
        machine_voice_threshold: float | None = None,
        machine_words_threshold: int | None = None,
        detect_interruptions: bool | None = None,
        detect_message_end: bool | None = None,
        timeout: float | None = None,
        control_id: str | None = None,
        on_completed: CompletedCallback | None = None,
    ) -> DetectAction:
        """Detect a human or a machine; the result is a ``DetectEvent`` (``.human``, ``.machine``).

        The thresholds and timeouts are the wire's ``machine`` detector params; ``timeout``
        bounds the whole detection."""
        params = drop_none(
            initial_timeout=initial_timeout,
            end_silence_timeout=end_silence_timeout,
            machine_ready_timeout=machine_ready_timeout,
            machine_voice_threshold=machine_voice_threshold,
            machine_words_threshold=machine_words_threshold,
            detect_interruptions=detect_interruptions,
            detect_message_end=detect_message_end,
        )
        return await self.detect(
            {"type": "machine", "params": params},
            timeout=timeout,
            control_id=control_id,
            on_completed=on_completed,
        )

    async def detect_fax(
        self,
        *,
        tone: str | None = None,
        timeout: float | None = None,
        control_id: str | None = None,
        on_completed: CompletedCallback | None = None,
    ) -> DetectAction:
        """Detect a fax tone (``tone`` ``"CED"`` or ``"CNG"``)."""
        return await self.detect(
            {"type": "fax", "params": drop_none(tone=tone)},
            timeout=timeout,
            control_id=control_id,
            on_completed=on_completed,
        )

    async def detect_digit(
        self,
        *,
        digits: str | None = None,
        timeout: float | None = None,
        control_id: str | None = None,
        on_completed: CompletedCallback | None = None,
    ) -> DetectAction:
        """Detect DTMF digits (``digits``: which ones count, default all)."""
        return await self.detect(
            {"type": "digit", "params": drop_none(digits=digits)},
            timeout=timeout,
            control_id=control_id,
            on_completed=on_completed,
        )
