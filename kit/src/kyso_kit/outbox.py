"""Transactional outbox without multi-document transactions, published once.

FerretDB v1 (and a standalone MongoDB) cannot commit two documents atomically, so the events a state
change causes are stored *inside the document whose state they describe*, in an ``outbox`` array,
by the same single-document update. The relay publishes a prefix of each outbox and then removes
exactly those entries (``$pop`` guarded by ``outbox.0.id``, or one guarded ``$set`` when nothing was
appended), so concurrent appends are never lost.

Publishing once — who may publish an entry:

* Every entry names its owner (``by``): the relay of the process whose write appended it. A relay
  owns a name while it holds a lease on it (a document in ``outbox_relays``, renewed every third of
  ``lease_seconds`` by a write, not per event). Only the owner publishes its entries; an entry whose
  owner's lease has lapsed (its process died), or that has no owner, is first *claimed*: one guarded
  write that sets ``by`` on exactly the entries (ids and previous owners) this pass read, so of two
  relays that race for it only one proceeds. A relay that could not renew stops publishing a third
  of the lease before the others may claim (``RelayFenced``), and takes a new name afterwards.
* Within a process, passes run one at a time, and a copy of a document (the one a write handed over,
  or one a sweep read) is used only if this relay cleared nothing from that document since just
  before the write or read that produced it (a sequence number taken before it); otherwise the
  document is read again. So no pass publishes from a copy that another pass already published
  and cleared — the duplicate this module used to make after every broker outage.
* A pass whose publish fails clears what it had already produced before giving up.

What remains is a crash (or the broker failing after it stored a record but before it answered, or a
database failure) between producing an entry and clearing it, or a process frozen for longer than a
third of its lease: the entry is produced again, a copy with the same CloudEvents ``id``. Consumers
deduplicate on ``id``.

Note: FerretDB v1 ignores conditions inside ``$pull`` and ``$slice`` inside ``$push``; the guarded
``$pop`` and ``$set`` used here (also on ``outbox.<n>.by``) work on both FerretDB and MongoDB.

A document with unpublished events also carries ``outbox_pending: true`` (set by the same write that
appends them), so the periodic sweep is an indexed equality lookup instead of a scan of every
document (``outbox.0`` queries cannot use an index).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection

from kyso_contracts import CloudEvent

log = logging.getLogger(__name__)

OUTBOX_FIELD = "outbox"
PENDING_FIELD = "outbox_pending"
OWNER_FIELD = "by"
LEASES = "outbox_relays"
# A handed-over or swept copy older than this is read again (this relay remembers its clears this long).
COPY_SECONDS = 60.0

Publish = Callable[[dict[str, Any]], Awaitable[None]]
Key = tuple[str, Any]


class RelayFenced(RuntimeError):
    """This relay's lease may have lapsed: it publishes nothing more until it holds a lease again."""


@dataclass(frozen=True)
class Ticket:
    """Taken by a write before it is sent: the owner its entries carry and this relay's sequence number
    at that moment (a copy is trusted only if the relay cleared nothing from the document since)."""

    owner: str
    seq: int
    at: float


@dataclass
class _Copy:
    doc: dict[str, Any] | None
    seq: int = 0
    at: float = 0.0


def outbox_entry(event: CloudEvent[Any], owner: str = "") -> dict[str, Any]:
    return {
        "id": event.id,
        "topic": type(event.data).topic,
        "key": event.subject,
        "value": event.to_json_dict(),
        OWNER_FIELD: owner,
    }


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


class _Leases:
    """Other relays' leases as one pass sees them (read at most once per pass, only when needed)."""

    def __init__(self, registry: AsyncCollection[Any]) -> None:
        self._registry = registry
        self._left: dict[str, float] | None = None
        self.soonest: float | None = None  # seconds until the first lease this pass stepped around ends

    async def left(self, owner: str) -> float:
        if self._left is None:
            now = datetime.now(UTC)
            docs = await self._registry.find({"until": {"$gt": now}}).to_list(None)
            self._left = {d["_id"]: (_aware(d["until"]) - now).total_seconds() for d in docs}
        left = self._left.get(owner, 0.0)
        if left > 0:
            self.soonest = left if self.soonest is None else min(self.soonest, left)
        return left


class OutboxRelay:
    """Publishes pending outbox entries, oldest first per document, each once unless something crashes.

    Two paths, because a MongoDB-wire query on ``outbox.0`` is a collection scan on FerretDB:
    * targeted — a service that just wrote events calls :meth:`nudge` with the document's id and the
      relay drains exactly that document (with the document the write returned: no read);
    * sweep — every ``sweep_seconds`` (and at start) every collection is scanned for leftovers:
      events written by a process that died before its relay ran, or whose publish failed.
    Both add no database round trip per event to what was there before: one guarded clear per
    document, plus a lease renewal every ``lease_seconds / 3`` and a claim only for orphaned entries.
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
        lease_seconds: float = 10.0,
        registry: AsyncCollection[Any] | None = None,
    ) -> None:
        self._collections = {c.name: c for c in collections}
        self._publish = publish
        self._poll = poll_seconds
        self._sweep_every = sweep_seconds
        self._batch = batch
        self._wake = asyncio.Event()
        self._targets: dict[Key, _Copy] = {}
        self._later: dict[Key, tuple[float, float]] = {}  # deferred documents: (when, give up after)
        self._retrying: dict[Key, float] = {}
        self._sweep_requested = True
        self._sweep_due = 0.0
        self._task: asyncio.Task[None] | None = None
        self._slots = asyncio.Semaphore(concurrency)
        self._pass = asyncio.Lock()
        self._observe = observe
        self._registry = registry
        self._lease = lease_seconds
        self._lease_lock = asyncio.Lock()
        self._owner = ""
        self._alive_until = 0.0
        self._renew_at = 0.0
        self._seq = 0
        self._cleared: dict[Key, tuple[int, float]] = {}
        self.swept = asyncio.Event()  # set after the first complete sweep
        self.published = 0

    # ------------------------------------------------------------------ lease

    @property
    def owner(self) -> str:
        """The name this relay's writes give their entries ("" while it holds no live lease)."""
        return self._owner if self._owner and time.monotonic() < self._alive_until else ""

    def ticket(self) -> Ticket:
        """Called by a write just before it is sent (see :class:`Ticket`)."""
        self._seq += 1
        return Ticket(self.owner, self._seq, time.monotonic())

    def _leases(self) -> AsyncCollection[Any] | None:
        if self._registry is None and self._collections:
            self._registry = next(iter(self._collections.values())).database[LEASES]
        return self._registry

    async def keep_lease(self) -> bool:
        """Take a lease on a new name, or extend the one held when a third of it has passed.

        The others may claim this relay's entries once ``until`` (this clock + lease) has passed; this
        relay stops publishing (and naming new entries) a third of the lease earlier, which absorbs
        clock skew and a slow renewal. A renewal that finds the lease already over takes a new name:
        entries that carry the old one may already be someone else's."""
        registry = self._leases()
        if registry is None:
            return False
        async with self._lease_lock:
            if self.owner and time.monotonic() < self._renew_at:
                return True
            sent = time.monotonic()
            now = datetime.now(UTC)
            until = now + timedelta(seconds=self._lease)
            held = False
            if self.owner:
                res = await registry.update_one({"_id": self._owner, "until": {"$gt": now}}, {"$set": {"until": until}})
                held = bool(res.matched_count)
            if not held:
                self._owner = ""
                name = uuid.uuid4().hex
                await registry.insert_one({"_id": name, "until": until})
                self._owner = name
                with contextlib.suppress(Exception):
                    await registry.delete_many({"until": {"$lt": now - timedelta(hours=1)}})
            self._alive_until = sent + self._lease * 2 / 3
            self._renew_at = sent + self._lease / 3
            return True

    async def release(self) -> None:
        """End the lease at once (a clean stop: another instance may take over what is left now)."""
        registry, owner = self._leases(), self._owner
        self._owner, self._alive_until = "", 0.0
        if registry is not None and owner:
            with contextlib.suppress(Exception):
                await registry.update_one({"_id": owner}, {"$set": {"until": datetime.now(UTC)}})

    async def _heartbeat(self) -> None:
        while True:
            try:
                await self.keep_lease()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("outbox relay could not renew its lease", exc_info=True)
            await asyncio.sleep(self._lease / 6)

    # ------------------------------------------------------------------ set-up and nudges

    async def prepare(self) -> None:
        """Index the pending flag of every watched collection (idempotent)."""
        for coll in self._collections.values():
            await coll.create_index([(PENDING_FIELD, 1)])

    def watch(self, collection: AsyncCollection[Any]) -> None:
        """Add a collection whose documents carry an outbox (registered once, by the store)."""
        self._collections[collection.name] = collection

    def nudge(
        self,
        collection: str | None = None,
        doc_id: Any = None,
        doc: dict[str, Any] | None = None,
        ticket: Ticket | None = None,
    ) -> None:
        """Ask the relay to publish now: one document's events, or (without arguments) a full sweep.

        ``doc`` is the document as the write that added the events returned it, ``ticket`` what that
        write took before it was sent: the relay then publishes without reading it again, unless it
        cleared something from that document since. Two copies of one document: read it instead
        (which write landed last is not known here)."""
        if collection is not None and doc_id is not None and collection in self._collections:
            key = (collection, doc_id)
            fresh = _Copy(doc, ticket.seq, ticket.at) if doc is not None and ticket is not None else _Copy(None)
            self._targets[key] = fresh if key not in self._targets else _Copy(None)
        else:
            self._sweep_requested = True
        self._wake.set()

    # ------------------------------------------------------------------ one document

    def _next_seq(self) -> tuple[int, float]:
        self._seq += 1
        return self._seq, time.monotonic()

    def _usable(self, key: Key, copy: _Copy) -> bool:
        cleared = self._cleared.get(key)
        return (
            copy.doc is not None
            and time.monotonic() - copy.at < COPY_SECONDS
            and (cleared is None or cleared[0] < copy.seq)
        )

    def _defer(self, key: Key) -> None:
        """A live relay owns this document's head: look again soon (for a while), then leave it to the sweep."""
        now = time.monotonic()
        give_up = self._retrying.pop(key, now + 3 * self._lease)
        if now < give_up:
            self._later[key] = (now + self._poll, give_up)

    async def _drain_document(
        self, coll: AsyncCollection[Any], doc_id: Any, copy: _Copy, leases: _Leases, defer: bool
    ) -> int:
        """Publish the prefix of one document's outbox this relay may publish, then clear exactly that."""
        key = (coll.name, doc_id)
        async with self._slots:
            doc = copy.doc
            if not self._usable(key, copy):
                self._next_seq()  # what this relay clears from now on is newer than this read
                doc = await coll.find_one({"_id": doc_id}, {OUTBOX_FIELD: 1, PENDING_FIELD: 1})
                if doc is None:
                    return 0
            entries: list[dict[str, Any]] = (doc or {}).get(OUTBOX_FIELD) or []
            if not entries:
                if (doc or {}).get(PENDING_FIELD):  # emptied by pops: the sweep need not find it again
                    await coll.update_one(
                        {"_id": doc_id, f"{OUTBOX_FIELD}.0": {"$exists": False}}, {"$unset": {PENDING_FIELD: ""}}
                    )
                return 0
            me = self.owner
            if not me:
                raise RelayFenced("no live lease")
            take: list[dict[str, Any]] = []
            claim: list[int] = []
            for i, entry in enumerate(entries):
                by = entry.get(OWNER_FIELD) or ""
                if by != me:
                    if by and await leases.left(by) > 0:
                        break  # a live relay publishes this one, and what follows it waits (order)
                    claim.append(i)
                take.append(entry)
            if not take:
                if defer:
                    self._defer(key)
                return 0
            if claim and not await self._claim(coll, doc_id, take, claim, me):
                self._defer(key)  # it moved meanwhile: read it again shortly
                return 0
            self._retrying.pop(key, None)
            return await self._send_and_clear(coll, key, take, whole=len(take) == len(entries))

    async def _claim(
        self, coll: AsyncCollection[Any], doc_id: Any, take: list[dict[str, Any]], claim: list[int], me: str
    ) -> bool:
        """Make these entries ours with one write that holds only if they are exactly as read."""
        flt: dict[str, Any] = {"_id": doc_id}
        for i, entry in enumerate(take):
            flt[f"{OUTBOX_FIELD}.{i}.id"] = entry["id"]
            flt[f"{OUTBOX_FIELD}.{i}.{OWNER_FIELD}"] = entry.get(OWNER_FIELD, {"$exists": False})
        res = await coll.update_one(flt, {"$set": {f"{OUTBOX_FIELD}.{i}.{OWNER_FIELD}": me for i in claim}})
        return bool(res.matched_count)

    async def _send_and_clear(
        self, coll: AsyncCollection[Any], key: Key, take: list[dict[str, Any]], whole: bool
    ) -> int:
        sent = 0
        try:
            for entry in take:
                if not self.owner:
                    raise RelayFenced("lease lapsed while publishing")
                await self._publish(entry)
                sent += 1
        finally:
            if sent:  # also when a later publish failed: what went out is never sent again by us
                await self._clear(coll, key, take[:sent], whole and sent == len(take))
        return sent

    async def _clear(self, coll: AsyncCollection[Any], key: Key, done: list[dict[str, Any]], whole: bool) -> None:
        doc_id = key[1]
        try:
            if whole:
                # One write when nothing moved meanwhile: the head is still ours and nothing was appended.
                flt = {
                    "_id": doc_id,
                    f"{OUTBOX_FIELD}.0.id": done[0]["id"],
                    f"{OUTBOX_FIELD}.{len(done)}": {"$exists": False},
                }
                res = await coll.update_one(flt, {"$set": {OUTBOX_FIELD: []}, "$unset": {PENDING_FIELD: ""}})
                if res.matched_count:
                    return
            for entry in done:  # events were appended: pop ours one by one, each guarded
                popped = await coll.update_one(
                    {"_id": doc_id, f"{OUTBOX_FIELD}.0.id": entry["id"]}, {"$pop": {OUTBOX_FIELD: -1}}
                )
                if popped.modified_count == 0:
                    log.warning("outbox entry already gone", extra={"event_id": entry["id"]})
                    break
        finally:
            self._cleared[key] = self._next_seq()

    async def _drain_many(
        self, coll: AsyncCollection[Any], docs: list[tuple[Any, _Copy]], leases: _Leases, defer: bool
    ) -> int:
        # Every document's task ends before the pass does (no pass overlaps another on one document).
        results = await asyncio.gather(
            *(self._drain_document(coll, i, c, leases, defer) for i, c in docs), return_exceptions=True
        )
        sent = sum(r for r in results if isinstance(r, int))
        self.published += sent
        failures = [r for r in results if isinstance(r, BaseException)]
        if failures:
            raise failures[0]
        return sent

    # ------------------------------------------------------------------ passes

    async def _pass_leases(self) -> _Leases | None:
        """Start a pass: hold a live lease (None: nothing is watched yet)."""
        registry = self._leases()
        if registry is None:
            return None
        # A running relay renews from its heartbeat task: no pass waits for that write.
        if not (self.owner and self._task is not None) and not await self.keep_lease():
            return None
        return _Leases(registry)

    async def drain_targets(self) -> int:
        """Publish the documents writes nudged about (and deferred ones that are due)."""
        async with self._pass:
            now = time.monotonic()
            for key, (when, give_up) in list(self._later.items()):
                if when <= now:
                    del self._later[key]
                    self._retrying[key] = give_up
                    self._targets.setdefault(key, _Copy(None))
            targets, self._targets = self._targets, {}
            if not targets:
                return 0
            sent = 0
            try:
                leases = await self._pass_leases()
                if leases is None:
                    return 0
                by_coll: dict[str, list[tuple[Any, _Copy]]] = {}
                for (name, doc_id), copy in targets.items():
                    by_coll.setdefault(name, []).append((doc_id, copy))
                for name, docs in by_coll.items():
                    sent += await self._drain_many(self._collections[name], docs, leases, defer=True)
            except BaseException:
                for key in targets:  # read them again: what a failed pass did is known only to the database
                    self._targets.setdefault(key, _Copy(None))
                raise
            return sent

    async def drain_once(self) -> int:
        """Sweep: publish everything pending in every collection right now; returns how many went out."""
        async with self._pass:
            leases = await self._pass_leases()
            if leases is None:
                return 0
            now = time.monotonic()
            self._cleared = {k: v for k, v in self._cleared.items() if now - v[1] < COPY_SECONDS}
            sent = 0
            for coll in self._collections.values():
                seq, at = self._next_seq()
                docs = (
                    await coll.find({PENDING_FIELD: True}, {OUTBOX_FIELD: 1, PENDING_FIELD: 1})
                    .limit(self._batch)
                    .to_list(None)
                )
                if self._observe:
                    self._observe(coll.name, docs)
                sent += await self._drain_many(coll, [(d["_id"], _Copy(d, seq, at)) for d in docs], leases, False)
            if leases.soonest is not None:  # come back when the first lease we stepped around ends
                self._sweep_due = min(self._sweep_due, time.monotonic() + leases.soonest + 0.05)
            self.swept.set()
            return sent

    async def run(self) -> None:
        heartbeat = asyncio.create_task(self._heartbeat(), name="outbox-relay-lease")
        try:
            while True:
                try:
                    sent = await self.drain_targets()
                    if self._sweep_requested or time.monotonic() >= self._sweep_due:
                        self._sweep_requested = False
                        self._sweep_due = time.monotonic() + self._sweep_every
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
                wait = min(
                    [self._poll, self._sweep_due - time.monotonic()]
                    + [w - time.monotonic() for w, _ in self._later.values()]
                )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=max(0.01, wait))
                self._wake.clear()
        finally:
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat

    def start(self) -> None:
        self._task = asyncio.create_task(self.run(), name="outbox-relay")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.release()
