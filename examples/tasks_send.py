#!/usr/bin/env python3
"""Queue a job for whichever worker listens on "office" (see tasks_worker.py).

One HTTPS request: no RELAY connection is opened. Credentials and host from
SIGNALWIRE_PROJECT_ID, SIGNALWIRE_API_TOKEN and SIGNALWIRE_SPACE.
"""

import asyncio
import sys

from relay_anyio import RelayError, send_task


async def main() -> int:
    job = {"job": "callback", "number": "+15551234567"}
    try:
        await send_task("office", job)
    except RelayError as exc:
        # Not retried on purpose: after a timeout the job may already be queued.
        print(f"Not queued: {exc}")
        return 1
    print(f"Queued: {job}")
    return 0


sys.exit(asyncio.run(main()))
