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
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from types import TracebackType
from typing import TypeVar

import anyio
from anyio.abc import TaskGroup

__all__ = ["StackOwned", "owned_task_group"]

_T = TypeVar("_T")


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


class StackOwned:
    """Base of an object whose ``async with`` (or ``connect()``) holds resources.

    ``_enter(cm)`` enters a context manager (usually an ``asynccontextmanager`` of the
    object's) on an ``AsyncExitStack`` the object keeps; ``__aexit__`` hands the
    block's outcome to that stack, and ``_leave()`` closes it without one.
    """

    _stack: AsyncExitStack | None = None

    async def _enter(self, manager: AbstractAsyncContextManager[_T]) -> _T:
        stack = AsyncExitStack()
        value = await stack.enter_async_context(manager)
        self._stack = stack
        return value

    async def _leave(self) -> None:
        stack, self._stack = self._stack, None
        if stack is not None:
            await stack.aclose()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        stack, self._stack = self._stack, None
        if stack is None:
            return False
        return bool(await stack.__aexit__(exc_type, exc, tb))
