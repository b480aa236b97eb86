"""The task event: a job one consumer on a context receives (reference §17.1)."""

from __future__ import annotations

from typing import Any

import attrs

from ._event_base import RelayEvent
from ._event_values import _str

__all__ = ["TaskEvent"]


@attrs.frozen
class TaskEvent(RelayEvent):
    """``queuing.relay.tasks``: a task sent with ``send_task`` to a context this client receives.

    RELAY hands each task to **one** of the sessions listening on its context, which
    makes contexts a work queue across processes and machines; ``@client.on_task``
    receives them. ``context`` and ``message`` are what the sender passed.

    The server puts a task's data next to ``event_type`` rather than under
    ``params.params`` as it does for calling events (whether it ever nests them is
    unconfirmed; both shapes are read). ``raw_params`` is therefore the dict the data
    were found in: the envelope's params for the flat shape (``event_type``,
    ``timestamp``, ``space_id``... included), the inner dict for the nested one.
    Like every event, the properties never raise: a missing or mistyped field reads
    as its empty default, and ``raw_params`` keeps what arrived.
    """

    @property
    def context(self) -> str:
        """The context the task was sent to (one this client receives on)."""
        return _str(self.raw_params.get("context"))

    @property
    def message(self) -> dict[str, Any]:
        """The sender's JSON object; ``{}`` if missing or not an object (see ``raw_params``)."""
        value = self.raw_params.get("message")
        return value if type(value) is dict else {}

    @property
    def project_id(self) -> str:
        return _str(self.raw_params.get("project_id"))

    @property
    def space_id(self) -> str:
        return _str(self.raw_params.get("space_id"))
