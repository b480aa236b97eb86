"""``signalwire.connect``: who may connect, and which session a connect starts or resumes.

The sessions a client can resume live here, by ``protocol``. A connect is checked
(version, agent, ``event_acks``), authenticated (project/token or a JWT), attached to
its session (taking it over from an older connection) and answered in one write with
every event the session still owes, as RELAY re-delivers on resume (reference §6.2,
§8.2; ``redeliver_on_resume`` switches that off).
"""

from __future__ import annotations

import base64
import logging
import os
import uuid
from collections.abc import Callable
from typing import Final, Protocol

from .._constants import EVENT_AUTHORIZATION_STATE
from ._session import Connection, FakeSession
from ._wire import JSONObject, error_body, response

__all__ = [
    "AUTH_FAILED_CODE",
    "AUTH_FAILED_ERROR_CODE",
    "AUTH_FAILED_MESSAGE",
    "ConnectHost",
    "SessionRegistry",
]

logger = logging.getLogger("relay_anyio.testing")

# The reference only establishes ``error.data.signalwire_error_code == "AUTH_REQUIRED"``
# (from the schema-driven mock); the numeric code and the message are UNCONFIRMED
# guesses, kept here so tests assert on names rather than on made-up literals.
AUTH_FAILED_CODE: Final = -32002
AUTH_FAILED_MESSAGE: Final = "Authentication failed: invalid project or token"
AUTH_FAILED_ERROR_CODE: Final = "AUTH_REQUIRED"

#: Records that a connection broke the protocol (``FakeRelayServer.violations``).
Violation = Callable[[Connection, str], None]


class ConnectHost(Protocol):
    """What a connect reads and records on its server (a ``FakeRelayServer``)."""

    project: str
    token: str
    jwt_tokens: tuple[str, ...]
    node_id: str
    auth_error_code: int
    redeliver_on_resume: bool
    stamp_events: bool
    dropped_on_resume: list[JSONObject]
    authorization_states_seen: list[str]
    on_connect: Callable[[FakeSession, bool], None] | None


class SessionRegistry:
    """The resumable sessions of one server, and the connect that reaches them."""

    def __init__(self, host: ConnectHost, violation: Violation) -> None:
        self._host = host
        self._violation = violation
        #: By ``protocol``, oldest first.
        self.sessions: dict[str, FakeSession] = {}
        self._event_seq = 0

    async def connect(self, conn: Connection, frame: JSONObject, params: JSONObject) -> bool:
        """Answer a ``signalwire.connect``; True if the connection is now authenticated."""
        host = self._host
        if conn.session is not None:
            error = error_body(-32600, "Invalid Request: already authenticated")
            await conn.send(response(frame, error=error))
            return False
        self._check_connect_params(conn, params)
        if not self._credentials_ok(conn, params.get("authentication")):
            logger.info("connection %d: authentication failed", conn.number)
            data = {"signalwire_error_code": AUTH_FAILED_ERROR_CODE}
            error = error_body(host.auth_error_code, AUTH_FAILED_MESSAGE, data)
            await conn.send(response(frame, error=error))
            return False
        blob = params.get("authorization_state")
        if isinstance(blob, str):
            host.authorization_states_seen.append(blob)
        session, restored = self._session_for(conn, params)
        async with conn.lock:
            previous = session._attach(conn)
            if previous is not None:
                logger.debug("connection %d takes session over", conn.number)
                await previous.abort()
            if restored and not host.redeliver_on_resume:
                host.dropped_on_resume.extend(session._drop_unacked())
            session.authorization_state = _authorization_blob()
            state = {"authorization_state": session.authorization_state}
            session.queue_event(EVENT_AUTHORIZATION_STATE, state)
            if host.on_connect is not None:
                host.on_connect(session, restored)
            result = self._connect_result(session, restored)
            # One write: the response, then every unacked event (old ones first, the
            # new authorization state last), before any other task may send.
            await conn.write(response(frame, result=result) + session.unacked_events())
        return True

    def _check_connect_params(self, conn: Connection, params: JSONObject) -> None:
        if not isinstance(params.get("version"), dict):
            self._violation(conn, "connect without a version object")
        agent = params.get("agent")
        if not isinstance(agent, str) or not agent:
            self._violation(conn, "connect without an agent string")
        if params.get("event_acks") is not True:
            self._violation(conn, "connect without event_acks: true")

    def _credentials_ok(self, conn: Connection, auth: object) -> bool:
        if not isinstance(auth, dict):
            return False
        has_jwt = "jwt_token" in auth
        if has_jwt and ("project" in auth or "token" in auth):
            self._violation(conn, "connect with both a JWT and project/token")
        if has_jwt:
            return auth["jwt_token"] in self._host.jwt_tokens
        return auth.get("project") == self._host.project and auth.get("token") == self._host.token

    def _session_for(self, conn: Connection, params: JSONObject) -> tuple[FakeSession, bool]:
        """The session a connect resumes, or a new one; and whether it was resumed."""
        contexts = params.get("contexts", [])
        if not isinstance(contexts, list) or not all(isinstance(c, str) for c in contexts):
            self._violation(conn, "connect with contexts that are not a list of strings")
            contexts = []
        protocol = params.get("protocol")
        session = self.sessions.get(protocol) if isinstance(protocol, str) else None
        restored = session is not None
        if session is None:
            session = FakeSession(
                protocol=f"signalwire_{uuid.uuid4().hex}",
                sessionid=str(uuid.uuid4()),
                identity=f"{self._host.project}@relay",
                stamp=self._stamp,
            )
            self.sessions[session.protocol] = session
        session.subscribe(contexts)
        return session, restored

    def _connect_result(self, session: FakeSession, restored: bool) -> JSONObject:
        return {
            "protocol": session.protocol,
            "identity": session.identity,
            "sessionid": session.sessionid,
            "session_restored": restored,
            "nodeid": self._host.node_id,
            "authorization": {},
        }

    def _stamp(self) -> int | None:
        """The next event stamp (``FakeRelayServer.stamp_events``), None while it is off."""
        if not self._host.stamp_events:
            return None
        self._event_seq += 1
        return self._event_seq


def _authorization_blob() -> str:
    """A fresh ``"<encrypted b64>:<tag b64>"``, shaped like RELAY's."""
    encrypted = base64.b64encode(os.urandom(24)).decode()
    tag = base64.b64encode(os.urandom(16)).decode()
    return f"{encrypted}:{tag}"
