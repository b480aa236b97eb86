"""Service commands of a call: taps, streams, transcription, fax, payment and AI agents."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ._actions import (
    AIAction,
    CompletedCallback,
    FaxAction,
    PayAction,
    StreamAction,
    TapAction,
    TranscribeAction,
)
from ._commands import CommandCore, drop_none

__all__ = ["ServiceCommands"]


class ServiceCommands(CommandCore):
    """Media taps and streams, transcription, fax, payments and AI agent sessions."""

    async def tap(
        self,
        tap: Mapping[str, Any],
        device: Mapping[str, Any],
        *,
        control_id: str | None = None,
        on_completed: CompletedCallback | None = None,
        **kwargs: Any,
    ) -> TapAction:
        """Copy the call's media (``tap``: direction, codec) to ``device`` (RTP or WebSocket);
        returns a ``TapAction``.
        """
        params = {"tap": dict(tap), "device": dict(device), **kwargs}
        return await self._start(
            TapAction(self, self._control_id(control_id), on_completed), "calling.tap", params
        )

    async def stream(
        self,
        url: str,
        *,
        name: str | None = None,
        codec: str | None = None,
        track: str | None = None,
        status_url: str | None = None,
        status_url_method: str | None = None,
        authorization_bearer_token: str | None = None,
        custom_parameters: Mapping[str, Any] | None = None,
        control_id: str | None = None,
        on_completed: CompletedCallback | None = None,
        **kwargs: Any,
    ) -> StreamAction:
        """Stream the call's audio to the WebSocket at ``url``; returns a ``StreamAction``."""
        params = {
            "url": url,
            **drop_none(
                name=name,
                codec=codec,
                track=track,
                status_url=status_url,
                status_url_method=status_url_method,
                authorization_bearer_token=authorization_bearer_token,
                custom_parameters=dict(custom_parameters) if custom_parameters else None,
            ),
            **kwargs,
        }
        return await self._start(
            StreamAction(self, self._control_id(control_id), on_completed),
            "calling.stream",
            params,
        )

    async def transcribe(
        self,
        *,
        status_url: str | None = None,
        control_id: str | None = None,
        on_completed: CompletedCallback | None = None,
        **kwargs: Any,
    ) -> TranscribeAction:
        """Transcribe the call until stopped; the result arrives with the terminal event."""
        params = {**drop_none(status_url=status_url), **kwargs}
        return await self._start(
            TranscribeAction(self, self._control_id(control_id), on_completed),
            "calling.transcribe",
            params,
        )

    async def send_fax(
        self,
        document: str,
        *,
        identity: str | None = None,
        header_info: str | None = None,
        control_id: str | None = None,
        on_completed: CompletedCallback | None = None,
        **kwargs: Any,
    ) -> FaxAction:
        """Send the PDF at ``document`` as a fax; the result (pages, success) with the terminal
        event.
        """
        params = {
            "document": document,
            **drop_none(identity=identity, header_info=header_info),
            **kwargs,
        }
        action = FaxAction(
            self, self._control_id(control_id), on_completed, method_prefix="calling.send_fax"
        )
        return await self._start(action, "calling.send_fax", params)

    async def receive_fax(
        self,
        *,
        control_id: str | None = None,
        on_completed: CompletedCallback | None = None,
        **kwargs: Any,
    ) -> FaxAction:
        """Receive a fax on this call; the document URL arrives with the terminal event."""
        action = FaxAction(
            self, self._control_id(control_id), on_completed, method_prefix="calling.receive_fax"
        )
        return await self._start(action, "calling.receive_fax", dict(kwargs))

    async def pay(
        self,
        payment_connector_url: str,
        *,
        control_id: str | None = None,
        input_method: str | None = None,
        status_url: str | None = None,
        payment_method: str | None = None,
        timeout: str | int | None = None,
        max_attempts: str | int | None = None,
        security_code: str | bool | None = None,
        postal_code: str | bool | None = None,
        min_postal_code_length: str | int | None = None,
        token_type: str | None = None,
        charge_amount: str | None = None,
        currency: str | None = None,
        language: str | None = None,
        voice: str | None = None,
        description: str | None = None,
        valid_card_types: str | None = None,
        parameters: Sequence[Mapping[str, Any]] | None = None,
        prompts: Sequence[Mapping[str, Any]] | None = None,
        on_completed: CompletedCallback | None = None,
        **kwargs: Any,
    ) -> PayAction:
        """Collect a payment over DTMF; ``wait()`` gives the ``finished``/``error`` event.

        The keywords are the official client's; values go out as given (the official
        client types most of them as strings, the guide as numbers and booleans, and
        which the server prefers is unconfirmed). ``input_method`` is sent as ``input``.
        """
        params = {
            "payment_connector_url": payment_connector_url,
            **drop_none(
                input=input_method,
                status_url=status_url,
                payment_method=payment_method,
                timeout=timeout,
                max_attempts=max_attempts,
                security_code=security_code,
                postal_code=postal_code,
                min_postal_code_length=min_postal_code_length,
                token_type=token_type,
                charge_amount=charge_amount,
                currency=currency,
                language=language,
                voice=voice,
                description=description,
                valid_card_types=valid_card_types,
                parameters=[dict(p) for p in parameters] if parameters is not None else None,
                prompts=[dict(p) for p in prompts] if prompts is not None else None,
            ),
            **kwargs,
        }
        return await self._start(
            PayAction(self, self._control_id(control_id), on_completed), "calling.pay", params
        )

    async def ai(
        self,
        *,
        control_id: str | None = None,
        agent: str | None = None,
        prompt: Mapping[str, Any] | None = None,
        post_prompt: Mapping[str, Any] | None = None,
        post_prompt_url: str | None = None,
        post_prompt_auth_user: str | None = None,
        post_prompt_auth_password: str | None = None,
        global_data: Mapping[str, Any] | None = None,
        pronounce: Sequence[Mapping[str, Any]] | None = None,
        hints: Sequence[str] | None = None,
        languages: Sequence[Mapping[str, Any]] | None = None,
        SWAIG: Mapping[str, Any] | None = None,  # the wire spells it so
        ai_params: Mapping[str, Any] | None = None,
        on_completed: CompletedCallback | None = None,
        **kwargs: Any,
    ) -> AIAction:
        """Start an AI agent on the call; ``wait()`` returns when the session ends.

        The session ends on its ``calling.call.ai`` ``finished``/``error`` event, on
        ``stop()``, or with the call (the server may never send an AI event, so the
        call's end always finishes the wait). ``ai_params`` is sent as ``params``.
        """
        params = {
            **drop_none(
                agent=agent,
                prompt=dict(prompt) if prompt is not None else None,
                post_prompt=dict(post_prompt) if post_prompt is not None else None,
                post_prompt_url=post_prompt_url,
                post_prompt_auth_user=post_prompt_auth_user,
                post_prompt_auth_password=post_prompt_auth_password,
                global_data=dict(global_data) if global_data is not None else None,
                pronounce=[dict(p) for p in pronounce] if pronounce is not None else None,
                hints=list(hints) if hints is not None else None,
                languages=[dict(lang) for lang in languages] if languages is not None else None,
                SWAIG=dict(SWAIG) if SWAIG is not None else None,
                params=dict(ai_params) if ai_params is not None else None,
            ),
            **kwargs,
        }
        return await self._start(
            AIAction(self, self._control_id(control_id), on_completed), "calling.ai", params
        )
