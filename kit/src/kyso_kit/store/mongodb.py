"""The store port on a MongoDB-wire database (MongoDB, or the project's patched FerretDB build).

Every write is one single-document command, so the guarantees of :mod:`kyso_kit.store.port` are the
server's own: MongoDB makes each single-document write atomic, and FerretDB v1 does once its write
commands are serialised (``deploy/patches/ferretdb-write-lock.patch``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pymongo import ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError, OperationFailure

from ..outbox import OUTBOX_FIELD, PENDING_FIELD, OutboxRelay
from .port import (
    _HIDDEN,
    APPLIED_FIELD,
    REVISION_FIELD,
    Doc,
    DuplicateKey,
    EventFactory,
    EventLike,
    _copy_update,
    _guarded,
    _hide,
    _trimmed,
    _Writer,
    revision_guard,
)


def _raise_if_duplicate(exc: OperationFailure, name: str) -> None:
    # FerretDB reports a unique violation caused by $set as InternalError (code 1: "UNIQUE constraint
    # failed"), not as DuplicateKeyError 11000.
    text = str(exc).lower()
    if exc.code == 11000 or "duplicate key" in text or "unique constraint failed" in text:
        raise DuplicateKey(name) from None


class MongoAggregates(_Writer):
    def __init__(
        self,
        coll: AsyncCollection[Doc],
        factory: EventFactory,
        *,
        publishes: bool,
        relay: OutboxRelay,
    ) -> None:
        super().__init__(coll.name, factory, publishes)
        self._coll = coll
        self._relay = relay

    @property
    def raw(self) -> AsyncCollection[Doc]:
        """For the relay and tests only."""
        return self._coll

    async def get(self, doc_id: Any, projection: Doc | None = None) -> Doc | None:
        return await self.find_one({"_id": doc_id}, projection)

    async def get_with_revision(self, doc_id: Any) -> tuple[Doc, int] | None:
        doc = await self._coll.find_one({"_id": doc_id}, {OUTBOX_FIELD: 0, APPLIED_FIELD: 0})
        if doc is None:
            return None
        rev = int(doc.get(REVISION_FIELD, 0))
        hidden = _hide(doc)
        assert hidden is not None
        return hidden, rev

    async def applied(self, doc_id: Any, event_id: str) -> bool:
        return await self._coll.find_one({"_id": doc_id, APPLIED_FIELD: event_id}, {"_id": 1}) is not None

    async def find_one(self, filter: Doc, projection: Doc | None = None) -> Doc | None:
        return _hide(await self._coll.find_one(filter, projection))

    async def find(
        self, filter: Doc, *, limit: int = 0, sort: tuple[str, int] | None = None, projection: Doc | None = None
    ) -> list[Doc]:
        cursor = self._coll.find(filter, projection)
        if sort:
            cursor = cursor.sort(*sort)
        if limit:
            cursor = cursor.limit(limit)
        return [{k: v for k, v in x.items() if k not in _HIDDEN} async for x in cursor]

    async def count(self, filter: Doc) -> int:
        return int(await self._coll.count_documents(filter))

    async def insert(self, doc: Doc, *, events: Sequence[EventLike] = ()) -> None:
        # taken before the write is sent: the entries' owner, and what the relay may trust the copy for
        ticket = self._relay.ticket()
        entries = self._entries(events, None, ticket.owner)
        body = dict(doc)
        if self._publishes:
            body[OUTBOX_FIELD] = entries
        if entries:
            body[PENDING_FIELD] = True
        try:
            await self._coll.insert_one(body)
        except DuplicateKeyError:
            raise DuplicateKey(self.name) from None
        if entries:
            self._relay.nudge(self.name, doc["_id"], body, ticket)

    def _prepare(
        self, filter: Doc, update: Doc, events: Sequence[EventLike], caused_by: str | None, owner: str = ""
    ) -> tuple[Doc, Doc]:
        flt, upd = _guarded(filter, _copy_update(update), caused_by)
        entries = self._entries(events, caused_by, owner)
        if entries:
            upd.setdefault("$push", {})[OUTBOX_FIELD] = {"$each": entries}
            upd.setdefault("$set", {})[PENDING_FIELD] = True
        return flt, upd

    async def _trim(self, doc: Doc) -> None:
        """Bound the applied-events memory (see :mod:`kyso_kit.store.port`); skipped if the document moved on."""
        trim = _trimmed(doc)
        if trim is not None:
            await self._coll.update_one({"_id": doc["_id"], **revision_guard(int(doc.get(REVISION_FIELD, 0)))}, trim)

    async def update_and_get(
        self,
        filter: Doc,
        update: Doc,
        *,
        events: Sequence[EventLike] = (),
        caused_by: str | None = None,
        upsert_with: Doc | None = None,
    ) -> Doc | None:
        ticket = self._relay.ticket()  # before the write is sent (see insert)
        flt, upd = self._prepare(filter, update, events, caused_by, ticket.owner)
        try:
            if upsert_with is not None:
                # Fields the filter fixes by equality are set by the upsert itself (and _id may not be set twice).
                on_insert = {k: v for k, v in upsert_with.items() if k not in flt or flt[k] != v}
                if self._publishes and OUTBOX_FIELD not in upd.get("$push", {}):
                    on_insert[OUTBOX_FIELD] = []
                with_insert = {**upd, "$setOnInsert": on_insert} if on_insert else upd
                try:
                    doc = await self._coll.find_one_and_update(
                        flt, with_insert, upsert=True, return_document=ReturnDocument.AFTER
                    )
                except DuplicateKeyError:
                    # Created concurrently by another event (or this one applied before): the guard decides.
                    doc = await self._coll.find_one_and_update(flt, upd, return_document=ReturnDocument.AFTER)
            else:
                doc = await self._coll.find_one_and_update(flt, upd, return_document=ReturnDocument.AFTER)
        except DuplicateKeyError:
            raise DuplicateKey(self.name) from None
        except OperationFailure as exc:
            _raise_if_duplicate(exc, self.name)
            raise
        if doc is not None and OUTBOX_FIELD in upd.get("$push", {}):
            self._relay.nudge(self.name, doc["_id"], doc, ticket)
        if doc is not None and caused_by is not None:
            await self._trim(doc)
        return _hide(doc)

    async def update(
        self,
        filter: Doc,
        update: Doc,
        *,
        events: Sequence[EventLike] = (),
        caused_by: str | None = None,
        upsert_with: Doc | None = None,
    ) -> bool:
        if upsert_with is not None or events:
            # the written document goes to the relay, which publishes from it unless it cleared that document since
            got = await self.update_and_get(filter, update, events=events, caused_by=caused_by, upsert_with=upsert_with)
            return got is not None
        flt, upd = self._prepare(filter, update, events, caused_by)
        try:
            if caused_by is not None:
                # the applied-events list and revision come back, to bound the list (FerretDB v1 has no
                # projection in findAndModify: the whole document comes, as for every write with events)
                after = await self._coll.find_one_and_update(flt, upd, return_document=ReturnDocument.AFTER)
                if after is not None:
                    await self._trim(after)
                return after is not None
            res = await self._coll.update_one(flt, upd)
        except DuplicateKeyError:
            raise DuplicateKey(self.name) from None
        except OperationFailure as exc:
            _raise_if_duplicate(exc, self.name)
            raise
        return bool(res.matched_count)

    async def update_many(self, filter: Doc, update: Doc) -> int:
        upd = _copy_update(update)
        upd.setdefault("$inc", {})[REVISION_FIELD] = 1
        res = await self._coll.update_many(filter, upd)
        return int(res.modified_count)

    async def delete_many(self, filter: Doc) -> int:
        if self._publishes:  # a document whose events are not yet published is never deleted
            filter = {**filter, PENDING_FIELD: {"$ne": True}}
        res = await self._coll.delete_many(filter)
        return int(res.deleted_count)

    async def ensure_index(
        self, keys: Sequence[tuple[str, int]], *, unique: bool = False, sparse: bool = False
    ) -> None:
        await self._coll.create_index(list(keys), unique=unique, sparse=sparse)


class MongoStore:
    """The service's database: collections are registered here once; event collections feed the relay."""

    def __init__(self, db: AsyncDatabase[Doc], factory: EventFactory, relay: OutboxRelay) -> None:
        self._db = db
        self.events = factory
        self._relay = relay
        self._collections: dict[str, MongoAggregates] = {}

    def collection(self, name: str, *, events: bool = False) -> MongoAggregates:
        known = self._collections.get(name)
        if known is not None:
            if events and not known._publishes:
                raise ValueError(f"collection {name!r} registered twice, once without events")
            return known
        coll = MongoAggregates(self._db[name], self.events, publishes=events, relay=self._relay)
        if events:
            self._relay.watch(self._db[name])
        self._collections[name] = coll
        return coll
