"""Wake up requests waiting for an aggregate to change (long-poll), without polling the database.

The handler that changes an aggregate calls :meth:`Changes.notify`; a request waiting on that key
wakes at once. Another instance of the service changes what this one cannot see, so waiters also
re-read on a slow tick — correctness never depends on the notification.
"""

from __future__ import annotations

import asyncio
import contextlib


class Changes:
    def __init__(self) -> None:
        self._waiters: dict[str, set[asyncio.Event]] = {}

    def notify(self, key: str) -> None:
        for event in self._waiters.get(key, ()):
            event.set()

    async def wait(self, key: str, timeout: float) -> None:
        """Return when ``key`` changes here or after ``timeout`` seconds, whichever comes first."""
        event = asyncio.Event()
        self._waiters.setdefault(key, set()).add(event)
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), timeout)
        finally:
            waiters = self._waiters.get(key)
            if waiters is not None:
                waiters.discard(event)
                if not waiters:
                    del self._waiters[key]
