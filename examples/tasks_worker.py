#!/usr/bin/env python3
"""A worker for the "office" context: RELAY gives each task to one worker listening.

Start several (on one machine or many): each job sent with ``send_task`` goes to one
of them. Connection settings from the SIGNALWIRE_* environment variables.
"""

from relay_anyio import RelayClient, TaskEvent

client = RelayClient(contexts=["office"])


@client.on_task
async def handle_task(task: TaskEvent) -> None:
    job = task.message
    print(f"Job on {task.context}: {job.get('job')} for {job.get('number')}")


client.run()
