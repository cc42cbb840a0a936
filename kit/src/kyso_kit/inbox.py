"""Idempotent consumption keyed on the CloudEvents id (never on offsets or FastStream's message id).

Two layers, because there is no transaction spanning "apply the effect" and "remember the event":

* :class:`Inbox` — a ``processed_events`` collection with ``_id = "<consumer>:<event id>"``, checked
  before handling and written after; it makes redelivery cheap.
* :func:`once` — the effect itself is a single-document update guarded by the event id stored in
  the aggregate (``applied_events``), so a crash after the effect but before the inbox write still
  applies the event exactly once.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

APPLIED_FIELD = "applied_events"


class Inbox:
    def __init__(self, db: AsyncDatabase[Any], consumer: str) -> None:
        self._coll = db["processed_events"]
        self._consumer = consumer

    def _key(self, event_id: str) -> str:
        return f"{self._consumer}:{event_id}"

    async def seen(self, event_id: str) -> bool:
        return await self._coll.find_one({"_id": self._key(event_id)}, {"_id": 1}) is not None

    async def forget_older_than(self, cutoff: datetime) -> int:
        """Housekeeping (FerretDB has no TTL indexes). The aggregate-level guard still stops a very
        late duplicate; this table only makes ordinary redelivery cheap."""
        res = await self._coll.delete_many({"at": {"$lt": cutoff}})
        return int(res.deleted_count)

    async def remember(self, event_id: str, event_type: str) -> None:
        try:
            await self._coll.insert_one({"_id": self._key(event_id), "type": event_type, "at": datetime.now(UTC)})
        except DuplicateKeyError:
            pass


def once(event_id: str, filter_: dict[str, Any]) -> dict[str, Any]:
    """Filter that matches the aggregate only if it has not applied ``event_id`` yet."""
    return {**filter_, APPLIED_FIELD: {"$ne": event_id}}


def mark_applied(update: dict[str, Any], event_id: str) -> dict[str, Any]:
    """Extend ``update`` to record ``event_id`` in the aggregate, in the same atomic write."""
    merged = {k: dict(v) for k, v in update.items()}
    merged.setdefault("$push", {})[APPLIED_FIELD] = event_id
    return merged


async def upsert_once(
    coll: Any, key: dict[str, Any], event_id: str, update: dict[str, Any], on_insert: dict[str, Any]
) -> bool:
    """Apply ``update`` to the document matching ``key`` (creating it with ``on_insert``) once per event.

    Returns False when the event had been applied already. Without transactions an upsert that
    collides on a unique key is ambiguous (applied before, or created concurrently by another event),
    so a collision is retried as a plain guarded update.
    """
    first = mark_applied(update, event_id)
    first["$setOnInsert"] = on_insert
    try:
        res = await coll.update_one(once(event_id, key), first, upsert=True)
        return bool(res.modified_count or res.upserted_id is not None)
    except DuplicateKeyError:
        res = await coll.update_one(once(event_id, key), mark_applied(update, event_id))
        return bool(res.modified_count)
