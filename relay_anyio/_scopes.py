"""A task group for objects that own tasks and are entered with ``async with``.

anyio's task group wraps an exception of its body in an exception group, even when
no child task failed. A transport or a client entered by user code must not do that
to the user's own exception (``except MyError`` around ``async with client:`` has to
keep working), so ``owned_task_group`` re-raises the body's exception as it was,
after cancelling and joining the children. Cancellation is left to the group, which
absorbs its own and passes on anyone else's.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from anyio.abc import TaskGroup

__all__ = ["owned_task_group"]


@asynccontextmanager
async def owned_task_group() -> AsyncIterator[TaskGroup]:
    """``async with owned_task_group() as tg:``: a task group that leaves the body's
    own exception unwrapped (its children are cancelled and joined first)."""
    failure: BaseException | None = None
    async with anyio.create_task_group() as tg:
        try:
            yield tg
        except BaseException as exc:
            if isinstance(exc, anyio.get_cancelled_exc_class()):
                raise
            failure = exc
            tg.cancel_scope.cancel()
    if failure is not None:
        raise failure
