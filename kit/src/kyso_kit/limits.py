"""Sliding-window counters in the database, shared by every instance of a service.

A fixed window that resets on the clock hour lets a guesser spend a whole allowance at 09:59 and
another at 10:00; here a bound of N per window means at most N events in *any* window-long span.
Each counted event is one small document (``scope``, ``key``, ``at``); an event counts while it is
younger than the window. FerretDB v1 has no TTL indexes, so :meth:`SlidingWindow.forget_old` deletes
events older than any window (the services run it hourly).

Every bound is on what is being guarded (an enrolment, an account, a challenge); the address-wide
ones are only backstops, which is why :meth:`over` lets a caller look before deciding.
"""

from __future__ import annotations

import math
import uuid

from .clock import Clock
from .store import Aggregates

KEEP_SECONDS = 2 * 24 * 3600
"""Events older than this are deleted (longer than any window a service uses)."""


class SlidingWindow:
    def __init__(self, coll: Aggregates, clock: Clock) -> None:
        self._coll = coll
        self._clock = clock

    async def init_indexes(self) -> None:
        await self._coll.ensure_index([("scope", 1), ("key", 1), ("at", 1)])

    def _live(self, scope: str, key: str, window_seconds: float, now: float) -> dict[str, object]:
        return {"scope": scope, "key": key, "at": {"$gt": now - window_seconds}}

    async def _wait(self, scope: str, key: str, limit: int, window_seconds: float, now: float, n: int) -> float:
        """Seconds until fewer than ``limit`` events are left in the window (``n`` are in it now)."""
        oldest = await self._coll.find(
            self._live(scope, key, window_seconds, now), sort=("at", 1), limit=max(1, n - limit + 1)
        )
        frees_at = float(oldest[-1]["at"]) + window_seconds if oldest else now
        return max(1, math.ceil(frees_at - now))

    async def count(self, scope: str, key: str, window_seconds: float) -> int:
        return await self._coll.count(self._live(scope, key, window_seconds, self._clock.time()))

    async def over(self, scope: str, key: str, limit: int, window_seconds: float) -> float | None:
        """None while fewer than ``limit`` events are in the window; else seconds until one leaves it.
        Counts nothing."""
        now = self._clock.time()
        n = await self._coll.count(self._live(scope, key, window_seconds, now))
        if n < limit:
            return None
        return await self._wait(scope, key, limit, window_seconds, now, n)

    async def record(self, scope: str, key: str) -> str:
        """Count one event; its id, to :meth:`give_back` it."""
        event_id = uuid.uuid4().hex
        await self._coll.insert({"_id": event_id, "scope": scope, "key": key, "at": self._clock.time()})
        return event_id

    async def hit(self, scope: str, key: str, limit: int, window_seconds: float) -> float | None:
        """Count one event if the window has room: None if it was counted, else seconds to wait.

        The event is written first and then ranked among the events of the window, so of parallel
        hits at most ``limit`` are allowed; a refused one is taken back, so asking again while refused
        never pushes the wait further out."""
        return await self.hit_all((scope, key, limit, window_seconds))

    async def hit_all(self, *bounds: tuple[str, str, int, float]) -> float | None:
        """:meth:`hit` on several ``(scope, key, limit, window_seconds)`` at once: counted in all of
        them, or (the first refusal's wait) in none."""
        counted: list[str] = []
        for scope, key, limit, window_seconds in bounds:
            counted.append(await self.record(scope, key))
            now = self._clock.time()
            n = await self._coll.count(self._live(scope, key, window_seconds, now))
            if n > limit:
                for event_id in counted:
                    await self.give_back(event_id)
                return await self._wait(scope, key, limit, window_seconds, now, n - 1)
        return None

    async def clear(self, scope: str, key: str) -> None:
        """Forget every event of ``key`` (a success that ends a run of failures)."""
        await self._coll.delete_many({"scope": scope, "key": key})

    async def give_back(self, event_id: str) -> None:
        await self._coll.delete_many({"_id": event_id})

    async def forget_old(self) -> int:
        return await self._coll.delete_many({"at": {"$lt": self._clock.time() - KEEP_SECONDS}})
