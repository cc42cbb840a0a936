"""Transactional outbox without multi-document transactions.

FerretDB v1 (and a standalone MongoDB) cannot commit two documents atomically, so the events a state
change causes are stored *inside the document whose state they describe*, in an ``outbox`` array,
by the same single-document update. The relay publishes the head of each outbox and then pops it
only if it is still the same event (``outbox.0.id`` guard), so concurrent appends are never lost
and a crash between publish and pop re-publishes the event: a duplicate, never a loss. Consumers
deduplicate on the envelope id.

Note: FerretDB v1 ignores conditions inside ``$pull`` and ``$slice`` inside ``$push``; the guarded
``$pop`` and ``$set`` used here work on both FerretDB and MongoDB.

A document with unpublished events also carries ``outbox_pending: true`` (set by the same write that
appends them), so the periodic sweep is an indexed equality lookup instead of a scan of every
document (``outbox.0`` queries cannot use an index).
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
PENDING_FIELD = "outbox_pending"

Publish = Callable[[dict[str, Any]], Awaitable[None]]


def outbox_entry(event: CloudEvent[Any]) -> dict[str, Any]:
    return {
        "id": event.id,
        "topic": type(event.data).topic,
        "key": event.subject,
        "value": event.to_json_dict(),
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
        concurrency: int = 32,
        observe: Callable[[str, list[dict[str, Any]]], None] | None = None,
    ) -> None:
        self._collections = {c.name: c for c in collections}
        self._publish = publish
        self._poll = poll_seconds
        self._sweep_every = sweep_seconds
        self._batch = batch
        self._wake = asyncio.Event()
        # (collection, document id) → the document as the write left it (None: read it first)
        self._targets: dict[tuple[str, Any], dict[str, Any] | None] = {}
        self._sweep_requested = True
        self._task: asyncio.Task[None] | None = None
        self._slots = asyncio.Semaphore(concurrency)
        self._observe = observe
        self.published = 0

    async def prepare(self) -> None:
        """Index the pending flag of every watched collection (idempotent)."""
        for coll in self._collections.values():
            await coll.create_index([(PENDING_FIELD, 1)])

    def watch(self, collection: AsyncCollection[Any]) -> None:
        """Add a collection whose documents carry an outbox (registered once, by the store)."""
        self._collections[collection.name] = collection

    def nudge(self, collection: str | None = None, doc_id: Any = None, doc: dict[str, Any] | None = None) -> None:
        """Ask the relay to publish now: one document's events, or (without arguments) a full sweep.

        ``doc`` is the document as the write that added the events returned it: the relay then publishes
        without reading it again (what it clears is still guarded by the outbox's current content)."""
        if collection is not None and doc_id is not None and collection in self._collections:
            key = (collection, doc_id)
            if doc is not None or key not in self._targets:  # never trade a handed-over document for a read
                self._targets[key] = doc
        else:
            self._sweep_requested = True
        self._wake.set()

    async def _drain_document(self, coll: AsyncCollection[Any], doc: dict[str, Any]) -> int:
        """Publish one document's events in order, then remove exactly those from its outbox."""
        entries = doc.get(OUTBOX_FIELD) or []
        async with self._slots:
            for entry in entries:
                await self._publish(entry)
            doc_id = doc["_id"]
            # One write when nothing moved meanwhile: the head is still ours and nothing was appended.
            done: dict[str, Any] = {"_id": doc_id, f"{OUTBOX_FIELD}.{len(entries)}": {"$exists": False}}
            if entries:
                done[f"{OUTBOX_FIELD}.0.id"] = entries[0]["id"]
            cleared = await coll.update_one(done, {"$set": {OUTBOX_FIELD: []}, "$unset": {PENDING_FIELD: ""}})
            if cleared.matched_count:
                return len(entries)
            # Events were appended, or another relay is popping: pop ours one by one, each guarded.
            for entry in entries:
                popped = await coll.update_one(
                    {"_id": doc_id, f"{OUTBOX_FIELD}.0.id": entry["id"]}, {"$pop": {OUTBOX_FIELD: -1}}
                )
                if popped.modified_count == 0:
                    break  # another relay got there first; what remains is theirs to finish
            return len(entries)

    async def _drain_all(self, coll: AsyncCollection[Any], docs: list[dict[str, Any]]) -> int:
        return sum(await asyncio.gather(*(self._drain_document(coll, d) for d in docs)))

    async def drain_targets(self) -> int:
        targets, self._targets = self._targets, {}
        by_coll: dict[str, list[tuple[Any, dict[str, Any] | None]]] = {}
        for (name, doc_id), doc in targets.items():
            by_coll.setdefault(name, []).append((doc_id, doc))
        sent = 0
        try:
            for name, docs in by_coll.items():
                coll = self._collections[name]

                async def current(doc_id: Any, doc: dict[str, Any] | None, c: Any = coll) -> dict[str, Any] | None:
                    # one primary-key read when the writer did not hand the document over
                    return doc if doc is not None else await c.find_one({"_id": doc_id}, {OUTBOX_FIELD: 1})

                found = await asyncio.gather(*(current(i, d) for i, d in docs))
                sent += await self._drain_all(coll, [d for d in found if d])
        except BaseException:
            for key, doc in targets.items():
                self._targets.setdefault(key, doc)
            raise
        self.published += sent
        return sent

    async def drain_once(self) -> int:
        """Sweep: publish everything pending in every collection right now; returns how many went out."""
        sent = 0
        for coll in self._collections.values():
            docs = await coll.find({PENDING_FIELD: True}, {OUTBOX_FIELD: 1}).limit(self._batch).to_list(None)
            if self._observe:
                self._observe(coll.name, docs)
            sent += await self._drain_all(coll, docs)
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
