"""Idempotent consumption keyed on the CloudEvents id (never on offsets or FastStream's message id).

Two layers, because there is no transaction spanning "apply the effect" and "remember the event":

* :class:`Inbox` — a ``processed_events`` collection with ``_id = "<consumer>:<event id>"``, checked
  before handling and written after; it makes redelivery cheap.
* the aggregate guard — the effect itself is a single-document update guarded by the event id stored
  in the aggregate (``caused_by=`` in :mod:`kyso_kit.store`), so a crash after the effect but before
  the inbox write still applies the event exactly once.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from .clock import SYSTEM_CLOCK, Clock


class Inbox:
    def __init__(self, db: AsyncDatabase[Any], consumer: str, clock: Clock = SYSTEM_CLOCK) -> None:
        self._coll = db["processed_events"]
        self._clock = clock
        self._consumer = consumer

    def _key(self, event_id: str) -> str:
        return f"{self._consumer}:{event_id}"

    async def seen(self, event_id: str) -> bool:
        return await self._coll.find_one({"_id": self._key(event_id)}, {"_id": 1}) is not None

    async def forget_older_than(self, cutoff: datetime) -> int:
        """Housekeeping (FerretDB has no TTL indexes). The aggregate's own memory of applied
        events covers only its last 32, so this table must be kept longer than Kafka's retention: it is
        the long memory of what was handled."""
        res = await self._coll.delete_many({"at": {"$lt": cutoff}})
        return int(res.deleted_count)

    async def remember(self, event_id: str, event_type: str) -> None:
        try:
            await self._coll.insert_one({"_id": self._key(event_id), "type": event_type, "at": self._clock.now()})
        except DuplicateKeyError:
            pass
