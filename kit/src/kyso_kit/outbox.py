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
from collections.abc import Awaitable, Callable, Sequence
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


class OutboxRelay:
    """Publishes pending outbox entries, oldest first per document.

    Two paths, because a MongoDB-wire query on ``outbox.0`` is a collection scan on FerretDB:
    * targeted — a service that just wrote events calls :meth:`nudge` with the document's id and the
      relay drains exactly that document (a primary-key read);
    * sweep — every ``sweep_seconds`` (and at start) every collection is scanned for leftovers:
      events written by a process that died before its relay ran, or whose publish failed.
    """

    def __init__(
        self,
        collections: Sequence[AsyncCollection[Any]],
        publish: Publish,
        *,
        poll_seconds: float = 0.5,
        sweep_seconds: float = 10.0,
        batch: int = 200,
    ) -> None:
        self._collections = {c.name: c for c in collections}
        self._publish = publish
        self._poll = poll_seconds
        self._sweep_every = sweep_seconds
        self._batch = batch
        self._wake = asyncio.Event()
        self._targets: set[tuple[str, Any]] = set()
        self._sweep_requested = True
        self._task: asyncio.Task[None] | None = None
        self.published = 0

    def watch(self, collection: AsyncCollection[Any]) -> None:
        """Add a collection whose documents carry an outbox (registered once, by the store)."""
        self._collections[collection.name] = collection

    def nudge(self, collection: str | None = None, doc_id: Any = None) -> None:
        """Ask the relay to publish now: one document's events, or (without arguments) a full sweep."""
        if collection is not None and doc_id is not None and collection in self._collections:
            self._targets.add((collection, doc_id))
        else:
            self._sweep_requested = True
        self._wake.set()

    async def _drain_document(self, coll: AsyncCollection[Any], doc: dict[str, Any]) -> int:
        sent = 0
        for entry in doc.get(OUTBOX_FIELD) or []:
            await self._publish(entry)
            popped = await coll.update_one(
                {"_id": doc["_id"], f"{OUTBOX_FIELD}.0.id": entry["id"]}, {"$pop": {OUTBOX_FIELD: -1}}
            )
            sent += 1
            if popped.modified_count == 0:
                break  # another relay got there first; what remains is theirs to finish
        return sent

    async def drain_targets(self) -> int:
        targets, self._targets = self._targets, set()
        sent = 0
        try:
            while targets:
                name, doc_id = targets.pop()
                coll = self._collections[name]
                doc = await coll.find_one({"_id": doc_id}, {OUTBOX_FIELD: 1})
                if doc:
                    sent += await self._drain_document(coll, doc)
        except BaseException:
            self._targets |= targets
            raise
        self.published += sent
        return sent

    async def drain_once(self) -> int:
        """Sweep: publish everything pending in every collection right now; returns how many went out."""
        sent = 0
        for coll in self._collections.values():
            cursor = coll.find({f"{OUTBOX_FIELD}.0": {"$exists": True}}, {OUTBOX_FIELD: 1}).limit(self._batch)
            async for doc in cursor:
                sent += await self._drain_document(coll, doc)
        self.published += sent
        return sent

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        last_sweep = 0.0
        while True:
            try:
                sent = await self.drain_targets()
                if self._sweep_requested or loop.time() - last_sweep >= self._sweep_every:
                    self._sweep_requested = False
                    last_sweep = loop.time()
                    sent += await self.drain_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("outbox relay pass failed; retrying")
                self._sweep_requested = True
                sent = 0
                await asyncio.sleep(1.0)
            if sent or self._targets:
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
