"""Mutants of the behaviours issue 11 asked to pin: each one must fail its test.

``make mutants`` (or ``.venv/bin/python tests/pinned_mutants.py``) copies the package and
the tests to a temporary directory, breaks one behaviour at a time there (one edit to
the package), runs the test that claims to pin it, and reports KILLED (the test
failed, as it must) or SURVIVED; then runs the same tests unmutated, which must pass.
The exit status is the number of survivors (non-zero if the unmutated run fails).
It is not part of ``make test``: it runs pytest eleven times over.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

SOURCE = Path(__file__).resolve().parent.parent
PYTEST = [sys.executable, "-m", "pytest"]
T = "tests/test_pinned_behaviours.py::"
#: (what breaks, file, code, broken code, the tests that must fail)
MUTANTS: list[tuple[str, str, str, str, list[str]]] = [
    (
        "a wait_for already waiting when the call ends raises CallEnded",
        "relay_anyio/_call.py",
        "        wait_error = error\n        for waiter in self._waiters:",
        "        wait_error = error\n        for waiter in ():",
        [T + "test_a_wait_for_already_waiting_when_the_call_ends_raises_call_ended"],
    ),
    (
        "after signalwire.disconnect the client reconnects at once",
        "relay_anyio/_session.py",
        "        self._reconnect_now = True\n        conn.idle = anyio.Event()",
        "        self._reconnect_now = False\n        conn.idle = anyio.Event()",
        [T + "test_after_disconnect_the_client_reconnects_at_once_though_the_server_never_closes"],
    ),
    (
        "after signalwire.disconnect requests in flight get the 5 s grace",
        "relay_anyio/_session.py",
        "tg.start_soon(drain, conn, self.options.disconnect_grace, tg)",
        "tg.start_soon(drain, conn, 0.0, tg)",
        [T + "test_after_disconnect_requests_in_flight_get_the_grace_then_the_link_closes"],
    ),
    (
        "the backoff doubles",
        "relay_anyio/_reconnect.py",
        "self._next = min(self._next * 2, self.cap)",
        "self._next = min(self._next * 3, self.cap)",
        ["tests/test_backoff.py"],
    ),
    (
        "the backoff jitters +-20 %",
        "relay_anyio/_reconnect.py",
        "self.rng.uniform(0.8, 1.2)",
        "self.rng.uniform(0.9, 1.1)",
        ["tests/test_backoff.py"],
    ),
    (
        "the backoff caps at 30 s",
        "relay_anyio/_reconnect.py",
        "pause = min(self._next * self.rng.uniform(0.8, 1.2), self.cap)",
        "pause = self._next * self.rng.uniform(0.8, 1.2)",
        ["tests/test_backoff.py"],
    ),
    (
        "the backoff resets after authentication",
        "relay_anyio/_reconnect.py",
        '        """Start over at ``base`` (a connection authenticated)."""\n'
        "        self._next = self.base",
        '        """Start over at ``base`` (a connection authenticated)."""',
        ["tests/test_backoff.py"],
    ),
    (
        "a frame that is not JSON loses its secrets",
        "relay_anyio/_redact.py",
        "return _truncate(_mask_raw(frame, secrets))",
        "return _truncate(frame)",
        [
            T + "test_a_frame_that_is_not_json_loses_its_secrets_in_the_log",
            T + "test_secrets_in_a_broken_frame_stay_out_of_the_debug_log",
        ],
    ),
    (
        "a dial answered by an unannounced leg returns a Call",
        "relay_anyio/_router.py",
        "                winner = self._new_call(\n"
        '                    {**info, "tag": dial.tag, "call_state": "answered"}, '
        'direction="outbound"\n'
        "                )",
        "                winner = None",
        [T + "test_a_dial_answered_by_a_leg_never_announced_still_returns_a_call"],
    ),
    (
        "max_active_calls counts every live call",
        "relay_anyio/_router.py",
        "len(self.calls) >= self.config.max_active_calls",
        "len(self.handled) >= self.config.max_active_calls",
        [T + "test_max_active_calls_counts_every_live_call_dialled_legs_included"],
    ),
    (
        "acks of a read go out before its events are routed",
        "relay_anyio/_session.py",
        "                try:\n"
        "                    if replies:\n"
        "                        await ws.send_texts(replies)\n"
        "                finally:\n"
        "                    # Acked (or the ack is lost with the link, and the server will\n"
        "                    # redeliver: the seen-window drops the repeat) -- now route.\n"
        "                    self._route_all(events)",
        "                self._route_all(events)\n"
        "                if replies:\n"
        "                    await ws.send_texts(replies)",
        [T + "test_the_acks_of_a_read_are_written_before_any_of_its_events_is_routed"],
    ),
]


def main() -> int:
    """Run every mutant; the number that survived."""
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        for part in ("relay_anyio", "tests", "pyproject.toml"):
            source = SOURCE / part
            if source.is_dir():
                shutil.copytree(source, root / part, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy(source, root / part)
        return _run_all(root)


def _pytest(root: Path, tests: list[str]) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(root)}  # the copy, not the installed package
    return subprocess.run(
        [*PYTEST, "-q", "-x", *tests], cwd=root, capture_output=True, text=True, env=env
    )


def _run_all(root: Path) -> int:
    survivors = 0
    for name, rel, old, new, tests in MUTANTS:
        path = root / rel
        original = path.read_text()
        if original.count(old) != 1:
            print(f"STALE     {name}: the code to break is not in {rel} once; update this file")
            survivors += 1
            continue
        path.write_text(original.replace(old, new))
        try:
            proc = _pytest(root, tests)
        finally:
            path.write_text(original)
        last = (proc.stdout.strip().splitlines() or [proc.stderr[-200:]])[-1]
        killed = proc.returncode == 1  # tests failed (not: could not run)
        survivors += not killed
        print(f"{'KILLED  ' if killed else 'SURVIVED'}  {name}: {last}", flush=True)
    every = sorted({test for *_, tests in MUTANTS for test in tests})
    proc = _pytest(root, every)
    print("unmutated:", (proc.stdout.strip().splitlines() or [proc.stderr[-200:]])[-1])
    return survivors + (proc.returncode != 0)


if __name__ == "__main__":
    sys.exit(main())
