"""Fixed-window counters in the database: atomic under concurrency, shared by every instance.

FerretDB v1 has no TTL indexes, so windows carry their own end and are checked in code; an expired
window document is simply a different ``_id`` (the window start is part of it).
"""

from __future__ import annotations

import math

from kyso_kit.clock import Clock
from kyso_kit.store import Aggregates


class RateLimiter:
    def __init__(self, coll: Aggregates, clock: Clock) -> None:
        self._coll = coll
        self._clock = clock

    def _window(self, scope: str, key: str, window_seconds: int) -> tuple[str, float, float]:
        now = self._clock.time()
        start = math.floor(now / window_seconds) * window_seconds
        return f"{scope}:{key}:{start}", start, now

    async def hit(self, scope: str, key: str, limit: int, window_seconds: int) -> int | None:
        """Count one event; returns None if allowed, else seconds until the window ends."""
        doc_id, start, now = self._window(scope, key, window_seconds)
        doc = await self._coll.update_and_get(
            {"_id": doc_id},
            {"$inc": {"count": 1}},
            upsert_with={"_id": doc_id, "scope": scope, "window_end": start + window_seconds},
        )
        if doc is not None and doc["count"] > limit:
            return math.ceil(start + window_seconds - now)
        return None

    async def refund(self, scope: str, key: str, window_seconds: int) -> None:
        """Give back one event of the current window (a try that turned out to be legitimate)."""
        doc_id, _, _ = self._window(scope, key, window_seconds)
        await self._coll.update({"_id": doc_id, "count": {"$gt": 0}}, {"$inc": {"count": -1}})

    async def forget_ended_windows(self) -> int:
        return await self._coll.delete_many({"window_end": {"$lt": self._clock.time()}})
