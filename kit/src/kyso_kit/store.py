"""Aggregates and the events their changes cause, written together — the one way services change state.

A service registers each collection once (``store.collection("payments", events=True)``) and gets an
:class:`Aggregates` port. One call performs a guarded single-document change, appends the events it
causes to that document's outbox in the *same* write, applies the "once per causing event" guard,
and nudges the relay. Services never see the outbox field, the relay or the applied-events list.
(Models: hexkit's ``DaoPublisher``, eventuate's ``ResultWithEvents``.)

Idempotency — one idiom for every event handler: pass ``caused_by=event.id``. The filter then also
requires ``applied_events != event.id`` and the update pushes ``event.id`` onto ``applied_events``,
so applying the event and remembering that it was applied are one single-document write. That is
atomic on MongoDB (every single-document write is) and on the project's FerretDB build (which
serialises write commands; ``tests/integration/test_database_atomicity.py`` checks it on any
server), and it needs no multi-document transaction, which FerretDB v1 does not have. A duplicate
delivery — even one that arrives after the consumer's inbox forgot the event id, or after a crash
between the write and the inbox record — finds the id in the aggregate and changes nothing. The
consumer's inbox (``processed_events``) is only a cache that makes redelivery cheap.

When the handler's write may create the aggregate (``upsert_with=...``), two different events can
race to create it; the loser hits the unique key and is retried as a plain guarded update, so each
event is still applied exactly once.

:class:`MemoryStore` is the in-memory fake with the same semantics (each call is atomic because it
never yields to the event loop), for the fast service-level tests.
"""

from __future__ import annotations

import copy
import operator
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

from pymongo import ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError, OperationFailure

from kyso_contracts import CloudEvent, Payload, parse_event, wrap

from .clock import SYSTEM_CLOCK, Clock
from .logs import current_correlation_id
from .outbox import OUTBOX_FIELD, PENDING_FIELD, OutboxRelay, outbox_entry
from .tracing import current_trace_context

Doc = dict[str, Any]
EventLike = Payload | CloudEvent[Any]
APPLIED_FIELD = "applied_events"
_HIDDEN = (OUTBOX_FIELD, APPLIED_FIELD, PENDING_FIELD)


class DuplicateKey(Exception):
    """A unique key (``_id`` or a unique index) is already taken."""


class EventFactory:
    """Wraps payloads in this service's CloudEvents envelope, in the current correlation context."""

    def __init__(self, source: str, clock: Clock = SYSTEM_CLOCK) -> None:
        self.source = source
        self.clock = clock

    def __call__(
        self, payload: Payload, *, causation_id: str | None = None, correlation_id: str | None = None
    ) -> CloudEvent[Any]:
        trace = current_trace_context()
        return wrap(
            payload,
            source=self.source,
            correlation_id=correlation_id or current_correlation_id(),
            causation_id=causation_id,
            time=self.clock.now(),
            traceparent=trace.get("traceparent"),
            tracestate=trace.get("tracestate"),
        )


class Aggregates(Protocol):
    """The port every use case writes through (MongoDB-style filters and update operators)."""

    name: str

    async def get(self, doc_id: Any, projection: Doc | None = None) -> Doc | None: ...

    async def find_one(self, filter: Doc, projection: Doc | None = None) -> Doc | None: ...

    async def find(
        self, filter: Doc, *, limit: int = 0, sort: tuple[str, int] | None = None, projection: Doc | None = None
    ) -> list[Doc]: ...

    async def count(self, filter: Doc) -> int: ...

    async def insert(self, doc: Doc, *, events: Sequence[EventLike] = ()) -> None:
        """Insert ``doc`` with its first events; :class:`DuplicateKey` if a unique key is taken."""
        ...

    async def update(
        self,
        filter: Doc,
        update: Doc,
        *,
        events: Sequence[EventLike] = (),
        caused_by: str | None = None,
        upsert_with: Doc | None = None,
    ) -> bool:
        """Apply ``update`` to the one document matching ``filter`` (the guard) with ``events``;
        True if the guard held. ``caused_by``: at most once per that event id. ``upsert_with``: the
        fields of a new document when none matches."""
        ...

    async def update_and_get(
        self,
        filter: Doc,
        update: Doc,
        *,
        events: Sequence[EventLike] = (),
        caused_by: str | None = None,
        upsert_with: Doc | None = None,
    ) -> Doc | None:
        """Like :meth:`update`, returning the document after the change (None if the guard failed)."""
        ...

    async def update_many(self, filter: Doc, update: Doc) -> int: ...

    async def delete_many(self, filter: Doc) -> int: ...

    async def ensure_index(
        self, keys: Sequence[tuple[str, int]], *, unique: bool = False, sparse: bool = False
    ) -> None:
        """Declare an index (idempotent); unique indexes are enforced by both implementations."""
        ...


class Store(Protocol):
    """Where a service's collections come from (registered once, by name)."""

    events: EventFactory

    def collection(self, name: str, *, events: bool = False) -> Aggregates: ...


# --------------------------------------------------------------------------- shared helpers


def _guarded(filter: Doc, update: Doc, caused_by: str | None) -> tuple[Doc, Doc]:
    """Add the once-per-causing-event guard; ``update`` is the store's own copy (see _copy_update)."""
    if caused_by is None:
        return filter, update
    update.setdefault("$push", {})[APPLIED_FIELD] = caused_by
    return {**filter, APPLIED_FIELD: {"$ne": caused_by}}, update


def _copy_update(update: Doc) -> Doc:
    for op in update:
        if not op.startswith("$"):
            raise ValueError("updates are made of operators ($set, $inc, …), never a whole replacement document")
        if any(f.split(".")[0] in _HIDDEN for f in update[op]):
            raise ValueError("the outbox and applied-events fields belong to the store")
    return {k: dict(v) for k, v in update.items()}


def _hide(doc: Doc | None) -> Doc | None:
    if doc is None:
        return None
    return {k: v for k, v in doc.items() if k not in _HIDDEN}


class _Writer:
    """What both implementations share: turning payloads into envelopes and outbox entries."""

    name: str

    def __init__(self, name: str, factory: EventFactory, publishes: bool) -> None:
        self.name = name
        self._factory = factory
        self._publishes = publishes

    def _entries(self, events: Sequence[EventLike], caused_by: str | None, owner: str = "") -> list[Doc]:
        if events and not self._publishes:
            raise ValueError(f"collection {self.name!r} was registered without events")
        return [
            outbox_entry(e if isinstance(e, CloudEvent) else self._factory(e, causation_id=caused_by), owner)
            for e in events
        ]


# --------------------------------------------------------------------------- MongoDB-wire


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
            res = await self._coll.update_one(flt, upd)
        except DuplicateKeyError:
            raise DuplicateKey(self.name) from None
        except OperationFailure as exc:
            _raise_if_duplicate(exc, self.name)
            raise
        return bool(res.matched_count)

    async def update_many(self, filter: Doc, update: Doc) -> int:
        res = await self._coll.update_many(filter, _copy_update(update))
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


# --------------------------------------------------------------------------- in-memory fake

_MISSING = object()
_COMPARE = {"$lt": operator.lt, "$lte": operator.le, "$gt": operator.gt, "$gte": operator.ge}


def _get(doc: Any, path: str) -> Any:
    cur = doc
    for part in path.split("."):
        if isinstance(cur, dict):
            cur = cur.get(part, _MISSING)
        elif isinstance(cur, list) and part.isdigit():
            idx = int(part)
            cur = cur[idx] if idx < len(cur) else _MISSING
        elif isinstance(cur, list):
            values = [v.get(part, _MISSING) for v in cur if isinstance(v, dict)]
            cur = [v for v in values if v is not _MISSING] or _MISSING
        else:
            return _MISSING
        if cur is _MISSING:
            return _MISSING
    return cur


def _eq(value: Any, cond: Any) -> bool:
    if isinstance(value, list) and not isinstance(cond, list):
        return any(_eq(v, cond) for v in value)
    if isinstance(value, datetime) and isinstance(cond, datetime):
        return value == cond
    return bool(value == cond)


def _cmp(value: Any, cond: Any, op: str) -> bool:
    if value is _MISSING or value is None:
        return False
    if isinstance(value, list):
        return any(_cmp(v, cond, op) for v in value)
    try:
        return bool(_COMPARE[op](value, cond))
    except TypeError:
        return False


def _match_value(value: Any, cond: Any) -> bool:
    if isinstance(cond, dict) and cond and all(k.startswith("$") for k in cond):
        for op, arg in cond.items():
            if op == "$ne":
                ok = value is _MISSING or not _eq(value, arg)
            elif op == "$in":
                ok = value is not _MISSING and any(_eq(value, a) for a in arg)
            elif op == "$nin":
                ok = value is _MISSING or not any(_eq(value, a) for a in arg)
            elif op == "$exists":
                ok = (value is not _MISSING) == bool(arg)
            elif op in ("$lt", "$lte", "$gt", "$gte"):
                ok = _cmp(value, arg, op)
            else:
                raise NotImplementedError(f"the in-memory store does not know {op}")
            if not ok:
                return False
        return True
    if value is _MISSING:
        return cond is None
    return _eq(value, cond)


def matches(doc: Doc, filter: Doc) -> bool:
    return all(_match_value(_get(doc, path), cond) for path, cond in filter.items())


def _parent(doc: Doc, path: str, create: bool) -> tuple[Any, str]:
    parts = path.split(".")
    cur: Any = doc
    for part in parts[:-1]:
        if isinstance(cur, list):
            cur = cur[int(part)]
            continue
        if part not in cur:
            if not create:
                return None, parts[-1]
            cur[part] = {}
        cur = cur[part]
    return cur, parts[-1]


def _apply(doc: Doc, update: Doc, inserting: bool) -> None:
    for op, fields in update.items():
        if op == "$setOnInsert" and not inserting:
            continue
        for path, arg in fields.items():
            parent, leaf = _parent(doc, path, create=op != "$unset")
            if op in ("$set", "$setOnInsert"):
                parent[leaf] = copy.deepcopy(arg)
            elif op == "$unset":
                if parent is not None:
                    parent.pop(leaf, None)
            elif op == "$inc":
                parent[leaf] = parent.get(leaf, 0) + arg
            elif op == "$max":
                if leaf not in parent or parent[leaf] < arg:
                    parent[leaf] = arg
            elif op == "$push":
                items = arg["$each"] if isinstance(arg, dict) and "$each" in arg else [arg]
                parent.setdefault(leaf, []).extend(copy.deepcopy(items))
            elif op == "$addToSet":
                target = parent.setdefault(leaf, [])
                if arg not in target:
                    target.append(copy.deepcopy(arg))
            elif op == "$pop":
                target = parent.get(leaf) or []
                if target:
                    target.pop(0 if arg == -1 else -1)
            else:
                raise NotImplementedError(f"the in-memory store does not know {op}")


def _project(doc: Doc, projection: Doc | None) -> Doc:
    doc = copy.deepcopy(doc)
    if not projection:
        return doc
    top = {k.split(".")[0]: v for k, v in projection.items()}
    if any(v for k, v in top.items() if k != "_id"):
        keep = {k for k, v in top.items() if v} | ({"_id"} if top.get("_id", 1) else set())
        return {k: v for k, v in doc.items() if k in keep}
    return {k: v for k, v in doc.items() if top.get(k, 1)}


class MemoryAggregates(_Writer):
    def __init__(self, name: str, factory: EventFactory, publishes: bool, sink: list[CloudEvent[Any]]) -> None:
        super().__init__(name, factory, publishes)
        self.docs: dict[Any, Doc] = {}
        self._unique: list[tuple[tuple[str, ...], bool]] = [(("_id",), False)]
        self._sink = sink

    def _taken(self, candidate: Doc) -> bool:
        """Would ``candidate`` collide with another document on a unique index?"""

        def key(doc: Doc, fields: tuple[str, ...]) -> tuple[Any, ...]:
            return tuple(None if (v := _get(doc, f)) is _MISSING else v for f in fields)

        for fields, sparse in self._unique[1:]:
            mine = key(candidate, fields)
            if sparse and all(v is None for v in mine):
                continue
            if any(o["_id"] != candidate["_id"] and key(o, fields) == mine for o in self.docs.values()):
                return True
        return False

    def _publish(self, entries: list[Doc]) -> None:
        self._sink.extend(parse_event(e["value"]) for e in entries)

    async def get(self, doc_id: Any, projection: Doc | None = None) -> Doc | None:
        doc = self.docs.get(doc_id)
        return None if doc is None else _hide(_project(doc, projection))

    async def find_one(self, filter: Doc, projection: Doc | None = None) -> Doc | None:
        found = await self.find(filter, limit=1, projection=projection)
        return found[0] if found else None

    async def find(
        self, filter: Doc, *, limit: int = 0, sort: tuple[str, int] | None = None, projection: Doc | None = None
    ) -> list[Doc]:
        out = [d for d in self.docs.values() if matches(d, filter)]
        if sort:
            field, direction = sort
            out.sort(key=lambda d: _get(d, field), reverse=direction < 0)
        if limit:
            out = out[:limit]
        return [h for h in (_hide(_project(d, projection)) for d in out) if h is not None]

    async def count(self, filter: Doc) -> int:
        return sum(1 for d in self.docs.values() if matches(d, filter))

    async def insert(self, doc: Doc, *, events: Sequence[EventLike] = ()) -> None:
        entries = self._entries(events, None)
        new = copy.deepcopy(doc)
        if new["_id"] in self.docs or self._taken(new):
            raise DuplicateKey(self.name)
        self.docs[new["_id"]] = new
        self._publish(entries)

    async def update_and_get(
        self,
        filter: Doc,
        update: Doc,
        *,
        events: Sequence[EventLike] = (),
        caused_by: str | None = None,
        upsert_with: Doc | None = None,
    ) -> Doc | None:
        flt, upd = _guarded(filter, _copy_update(update), caused_by)
        entries = self._entries(events, caused_by)
        target = next((d for d in self.docs.values() if matches(d, flt)), None)
        inserting = False
        if target is None:
            if upsert_with is None:
                return None
            target = {k: copy.deepcopy(v) for k, v in flt.items() if not k.startswith("$") and not isinstance(v, dict)}
            target.update(copy.deepcopy(upsert_with))
            inserting = True
        candidate = copy.deepcopy(target)
        _apply(candidate, upd, inserting)
        if inserting and (candidate["_id"] in self.docs or self._taken(candidate)):
            # the same answer MongoDB gives: created concurrently, so only the guard decides
            return await self.update_and_get(filter, update, events=events, caused_by=caused_by)
        if not inserting and self._taken(candidate):
            raise DuplicateKey(self.name)
        self.docs[candidate["_id"]] = candidate
        self._publish(entries)
        return _hide(copy.deepcopy(candidate))

    async def update(
        self,
        filter: Doc,
        update: Doc,
        *,
        events: Sequence[EventLike] = (),
        caused_by: str | None = None,
        upsert_with: Doc | None = None,
    ) -> bool:
        got = await self.update_and_get(filter, update, events=events, caused_by=caused_by, upsert_with=upsert_with)
        return got is not None

    async def update_many(self, filter: Doc, update: Doc) -> int:
        upd = _copy_update(update)
        n = 0
        for doc in [d for d in self.docs.values() if matches(d, filter)]:
            _apply(doc, upd, False)
            n += 1
        return n

    async def delete_many(self, filter: Doc) -> int:
        gone = [k for k, d in self.docs.items() if matches(d, filter)]
        for k in gone:
            del self.docs[k]
        return len(gone)

    async def ensure_index(
        self, keys: Sequence[tuple[str, int]], *, unique: bool = False, sparse: bool = False
    ) -> None:
        spec = (tuple(k for k, _ in keys), sparse)
        if unique and spec not in self._unique:
            self._unique.append(spec)


class MemoryStore:
    """In-memory fake of :class:`MongoStore` for service-level tests; ``published`` is what reached Kafka."""

    def __init__(self, factory: EventFactory) -> None:
        self.events = factory
        self.published: list[CloudEvent[Any]] = []
        self._collections: dict[str, MemoryAggregates] = {}

    def collection(self, name: str, *, events: bool = False) -> MemoryAggregates:
        if name not in self._collections:
            self._collections[name] = MemoryAggregates(name, self.events, events, self.published)
        coll = self._collections[name]
        coll._publishes = coll._publishes or events
        return coll

    def of_type(self, *payloads: type[Payload]) -> list[CloudEvent[Any]]:
        types = {p.event_type for p in payloads}
        return [e for e in self.published if e.type in types]
