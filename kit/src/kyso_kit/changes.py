"""Wake up requests waiting for an aggregate to change (long-poll), without polling the database.

The handler that changes an aggregate calls :meth:`Changes.notify`; a request waiting on that key
wakes at once. Another instance of the service changes what this one cannot see, so waiters also
re-read on a slow tick — correctness never depends on the notification.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterator
from typing import TypeVar

T = TypeVar("T")


class Changes:
    def __init__(self) -> None:
        self._waiters: dict[str, set[asyncio.Event]] = {}

    def notify(self, key: str) -> None:
        for event in self._waiters.get(key, ()):
            event.set()

    @contextlib.contextmanager
    def _watching(self, key: str) -> Iterator[asyncio.Event]:
        event = asyncio.Event()
        self._waiters.setdefault(key, set()).add(event)
        try:
            yield event
        finally:
            waiters = self._waiters.get(key)
            if waiters is not None:
                waiters.discard(event)
                if not waiters:
                    del self._waiters[key]

    async def read_when(
        self,
        key: str,
        read: Callable[[], Awaitable[T]],
        ready: Callable[[T], bool],
        wait_seconds: float,
    ) -> T:
        """``read()`` as soon as ``ready`` holds for it, or its last value after ``wait_seconds``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_seconds
        while True:
            # Watch *before* reading, so a change that lands during the read still wakes us.
            with self._watching(key) as changed:
                value = await read()
                left = deadline - loop.time()
                if ready(value) or left <= 0:
                    return value
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(changed.wait(), min(left, 1.0))
