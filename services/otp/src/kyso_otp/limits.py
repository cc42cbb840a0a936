"""Fixed-window counters in the database: atomic under concurrency, shared by every instance.

FerretDB v1 has no TTL indexes, so windows carry their own end and are checked in code; an expired
window document is simply a different ``_id`` (the window start is part of it).
"""

from __future__ import annotations

import math
import time
from typing import Any

from pymongo import ReturnDocument


class RateLimiter:
    def __init__(self, coll: Any) -> None:
        self._coll = coll

    async def hit(self, scope: str, key: str, limit: int, window_seconds: int) -> int | None:
        """Count one event; returns None if allowed, else seconds until the window ends."""
        now = time.time()
        start = math.floor(now / window_seconds) * window_seconds
        doc = await self._coll.find_one_and_update(
            {"_id": f"{scope}:{key}:{start}"},
            {"$inc": {"count": 1}, "$setOnInsert": {"scope": scope, "window_end": start + window_seconds}},
            upsert=True,
            return_document=ReturnDocument.AFTER,
        )
        if doc["count"] > limit:
            return math.ceil(start + window_seconds - now)
        return None
