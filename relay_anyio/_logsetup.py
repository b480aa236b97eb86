"""Logging a fleet can search: JSON lines, levels from the environment, storms folded.

``configure_logging()`` is what ``relay-anyio run`` and ``client.run()`` use: one
handler on the root logger, writing text or one JSON object per line
(``JsonFormatter``), with a ``RepeatFilter`` that folds repeated identical warnings
(a dead network's reconnect storm) into one line per window with a count, so a long
outage cannot fill a disk. The level and format come from the arguments, else
``SIGNALWIRE_LOG_LEVEL`` and ``SIGNALWIRE_LOG_FORMAT`` (the variables SignalWire's own
SDK reads), else INFO and text.

The SDK's records about a call carry ``call_id`` (and ``control_id`` for an action) as
attributes of the record (``extra=``), which the JSON formatter writes as fields of
their own; values under credential-shaped keys are masked, as in the frame log.
"""

from __future__ import annotations

import atexit
import datetime
import json
import logging
import os
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import IO, Any

from ._redact import SECRET_KEYS, scrub

__all__ = [
    "JsonFormatter",
    "RepeatFilter",
    "configure_logging",
    "logging_requested",
]

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_FORMATS = {"json": "json", "text": "text", "console": "text"}
#: Attributes every LogRecord has; anything else on a record came from ``extra=``.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message",
    "asctime",
    "taskName",
}
_MASK = "***"


def _field(key: str, value: Any) -> Any:
    if key in SECRET_KEYS and isinstance(value, str):
        return _MASK
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, dict | list):
        return scrub(value)
    return str(value)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and every ``extra=`` field.

    Why: a fleet's log store indexes fields, so ``call_id`` must be a field of its own
    to find every line of one call across workers, not a word inside the message.
    ``time`` is UTC ISO 8601 with milliseconds; an exception goes under ``exc_info``
    as its formatted traceback. Strings under credential-shaped keys (``token``,
    ``project``, ``jwt_token``...) are masked; other values that JSON cannot hold are
    written with ``str()``.
    """

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line of JSON."""
        created = datetime.datetime.fromtimestamp(record.created, datetime.UTC)
        out: dict[str, Any] = {
            "time": created.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_") and key not in out:
                out[key] = _field(key, value)
        if record.exc_info:
            out["exc_info"] = self.formatException(record.exc_info)
        elif record.exc_text:
            out["exc_info"] = record.exc_text
        if record.stack_info:
            out["stack_info"] = self.formatStack(record.stack_info)
        return json.dumps(out, ensure_ascii=False, default=str)


class _Seen:
    __slots__ = ("count", "last", "start")

    def __init__(self, start: float) -> None:
        self.start = start
        self.count = 0
        self.last: logging.LogRecord | None = None


class RepeatFilter(logging.Filter):
    """Fold repeated identical records: the first passes, the rest are counted.

    Identical means same logger, level and rendered message. Within ``window``
    seconds of the first occurrence, repeats are dropped and counted; the next
    occurrence after the window passes with ``(repeated N more times in the last S
    s)`` appended and a ``repeated`` field, and starts a new window. A storm that
    stopped gets its count as a summary record of its own, emitted (through
    ``emit``, by default the record's logger) when any later record passes this
    filter, or by ``flush()``. Only records at ``level`` or above are looked at
    (WARNING by default); at most ``max_keys`` distinct messages are tracked.
    ``clock`` is injectable for tests (monotonic seconds).
    """

    def __init__(
        self,
        window: float = 60.0,
        *,
        level: int = logging.WARNING,
        max_keys: int = 1000,
        clock: Callable[[], float] = time.monotonic,
        emit: Callable[[logging.LogRecord], object] | None = None,
    ) -> None:
        super().__init__()
        if not window > 0:
            raise ValueError(f"window must be a positive number of seconds, got {window!r}")
        if max_keys < 1:
            raise ValueError(f"max_keys must be at least 1, got {max_keys!r}")
        self.window = window
        self.level = level
        self.max_keys = max_keys
        self._clock = clock
        self._emit = emit
        self._seen: OrderedDict[tuple[str, int, str], _Seen] = OrderedDict()
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        """False for a repeat within its window; True otherwise (maybe annotated)."""
        if record.levelno < self.level or hasattr(record, "repeated"):
            return True
        message = record.getMessage()
        key = (record.name, record.levelno, message)
        with self._lock:
            now = self._clock()
            seen = self._seen.get(key)
            if seen is not None and now - seen.start < self.window:
                seen.count += 1
                seen.last = record
                passes = False
            else:
                passes = True
                if seen is not None and seen.count:
                    _annotate(record, message, seen.count, now - seen.start)
                self._seen.pop(key, None)
                self._seen[key] = _Seen(now)
            due = self._due(now, keep=key)
        for summary in due:
            self._send(summary)
        return passes

    def flush(self) -> None:
        """Emit the counts of every storm still being folded (at exit, say)."""
        with self._lock:
            now = self._clock()
            due = [_summary(s, now) for s in self._seen.values() if s.count]
            self._seen.clear()
        for summary in due:
            self._send(summary)

    def _due(self, now: float, keep: tuple[str, int, str]) -> list[logging.LogRecord]:
        """Forget expired windows (the oldest first); summaries of those with repeats."""
        due: list[logging.LogRecord] = []
        while self._seen:
            key, seen = next(iter(self._seen.items()))
            expired = now - seen.start >= self.window
            if key == keep or not (expired or len(self._seen) > self.max_keys):
                break
            del self._seen[key]
            if seen.count:
                due.append(_summary(seen, now))
        return due

    def _send(self, summary: logging.LogRecord) -> None:
        if self._emit is not None:
            self._emit(summary)
        else:
            logging.getLogger(summary.name).handle(summary)


def _annotate(record: logging.LogRecord, message: str, count: int, elapsed: float) -> None:
    record.msg = "%s (repeated %d more times in the last %.0f s)"
    record.args = (message, count, elapsed)
    record.repeated = count


def _summary(seen: _Seen, now: float) -> logging.LogRecord:
    assert seen.last is not None
    record = logging.makeLogRecord(dict(vars(seen.last)))
    _annotate(record, seen.last.getMessage(), seen.count, now - seen.start)
    record.exc_info = record.exc_text = None
    record.created = time.time()
    return record


def logging_requested() -> bool:
    """Whether ``SIGNALWIRE_LOG_LEVEL`` or ``SIGNALWIRE_LOG_FORMAT`` asks for logging."""
    return any(
        os.environ.get(name, "").strip()
        for name in ("SIGNALWIRE_LOG_LEVEL", "SIGNALWIRE_LOG_FORMAT")
    )


def _choice(value: str | None, variable: str, default: str) -> tuple[str, str]:
    """(value, where it came from) for an argument, else the variable, else the default."""
    if value is not None and value.strip():
        return value.strip(), "the argument"
    env = os.environ.get(variable, "").strip()
    if env:
        return env, variable
    return default, "the default"


_installed: tuple[logging.Handler, RepeatFilter] | None = None


def configure_logging(
    level: str | int | None = None,
    log_format: str | None = None,
    *,
    stream: IO[str] | None = None,
    repeat_window: float = 60.0,
) -> logging.Handler:
    """Send every log record to ``stream`` (stderr) as text or JSON lines; return the handler.

    ``level`` (a name such as ``"debug"``, or a number) defaults to
    ``SIGNALWIRE_LOG_LEVEL``, else INFO; DEBUG includes every frame, secrets masked.
    ``log_format`` is ``"json"`` (one object per line, ``JsonFormatter``) or ``"text"``
    (``"console"`` too, SignalWire's name), defaulting to ``SIGNALWIRE_LOG_FORMAT``,
    else text. Repeated identical warnings are folded per ``repeat_window`` seconds
    (``RepeatFilter``). Calling it again replaces the handler it installed before.
    Raises ``ValueError`` naming the argument or variable for an unknown level or
    format.
    """
    global _installed
    if isinstance(level, bool):
        raise TypeError(f"level must be a name or a number, got {level!r}")
    if isinstance(level, int):
        levelno = level
    else:
        name, source = _choice(level, "SIGNALWIRE_LOG_LEVEL", "INFO")
        if name.upper() not in _LEVELS:
            raise ValueError(
                f"log level {name!r} from {source} is not one of "
                f"{', '.join(n.lower() for n in _LEVELS)}"
            )
        levelno = logging.getLevelNamesMapping()[name.upper()]
    chosen, source = _choice(log_format, "SIGNALWIRE_LOG_FORMAT", "text")
    kind = _FORMATS.get(chosen.lower())
    if kind is None:
        raise ValueError(f"log format {chosen!r} from {source} is not one of json, text, console")
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter() if kind == "json" else logging.Formatter(TEXT_FORMAT))
    repeats = RepeatFilter(repeat_window, emit=handler.handle)
    handler.addFilter(repeats)
    root = logging.getLogger()
    if _installed is not None:
        old_handler, old_filter = _installed
        root.removeHandler(old_handler)
        atexit.unregister(old_filter.flush)
        old_filter.flush()
    root.addHandler(handler)
    root.setLevel(levelno)
    atexit.register(repeats.flush)
    _installed = (handler, repeats)
    return handler
