"""Transactional outbox without multi-document transactions.

FerretDB v1 (and a standalone MongoDB) cannot commit two documents atomically, so the events a state
change causes are stored *inside the document whose state they describe*, in an ``outbox`` array,
by the same single-document update. The relay publishes the head of each outbox and then pops it
only if it is still the same event (``outbox.0.id`` guard), so concurrent appends are never lost
and a crash between publish and pop re-publishes the event: a duplicate, never a loss. Consumers
deduplicate on the envelope id.

Note: FerretDB v1 ignores conditions inside ``$pull`` and ``$slice`` inside ``$push``; the guarded
``$pop`` used here works on both FerretDB and MongoDB.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection

from kyso_contracts import CloudEvent

log = logging.getLogger(__name__)

OUTBOX_FIELD = "outbox"

Publish = Callable[[dict[str, Any]], Awaitable[None]]


def outbox_entry(event: CloudEvent[Any]) -> dict[str, Any]:
    return {
        "id": event.id,
        "topic": type(event.data).topic,
        "key": event.subject,
        "value": event.model_dump(mode="json"),
    }


def with_events(update: dict[str, Any], events: Iterable[CloudEvent[Any]]) -> dict[str, Any]:
    """Return ``update`` extended so the same atomic write appends ``events`` to the outbox."""
    entries = [outbox_entry(e) for e in events]
    if not entries:
        return update
    merged = {k: dict(v) for k, v in update.items()}
    push = merged.setdefault("$push", {})
    if OUTBOX_FIELD in push:
        raise ValueError("update already pushes to the outbox")
    push[OUTBOX_FIELD] = {"$each": entries}
    return merged


def new_document_outbox(events: Iterable[CloudEvent[Any]]) -> dict[str, list[dict[str, Any]]]:
    """The outbox field of a document that is inserted together with its first events."""
    return {OUTBOX_FIELD: [outbox_entry(e) for e in events]}


class OutboxRelay:
    """Publishes pending outbox entries of the given collections, oldest first per document."""

    def __init__(
        self,
        collections: Sequence[AsyncCollection[Any]],
        publish: Publish,
        poll_seconds: float = 0.5,
        batch: int = 200,
    ) -> None:
        self._collections = list(collections)
        self._publish = publish
        self._poll = poll_seconds
        self._batch = batch
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.published = 0

    def nudge(self) -> None:
        """Ask the relay to look now (called after a local write that added events)."""
        self._wake.set()

    async def drain_once(self) -> int:
        """Publish everything pending right now; returns how many events went out."""
        sent = 0
        for coll in self._collections:
            cursor = coll.find({f"{OUTBOX_FIELD}.0": {"$exists": True}}, {OUTBOX_FIELD: 1}).limit(self._batch)
            async for doc in cursor:
                for entry in doc[OUTBOX_FIELD]:
                    await self._publish(entry)
                    popped = await coll.update_one(
                        {"_id": doc["_id"], f"{OUTBOX_FIELD}.0.id": entry["id"]}, {"$pop": {OUTBOX_FIELD: -1}}
                    )
                    sent += 1
                    if popped.modified_count == 0:
                        # Another relay got there first; what remains is theirs to finish.
                        break
        self.published += sent
        return sent

    async def run(self) -> None:
        while True:
            try:
                sent = await self.drain_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("outbox relay pass failed; retrying")
                sent = 0
                await asyncio.sleep(1.0)
            if sent:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self._poll)
            self._wake.clear()

    def start(self) -> None:
        self._task = asyncio.create_task(self.run(), name="outbox-relay")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
