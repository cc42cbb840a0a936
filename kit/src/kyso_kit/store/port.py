"""The store port: what a use case writes through, and the rules both implementations share.

A service registers each collection once (``store.collection("payments", events=True)``) and gets an
:class:`Aggregates` port. One call performs a guarded single-document change, appends the events it
causes to that document's outbox in the *same* write, applies the "once per causing event" guard,
bumps the document's revision and nudges the relay. Services never see the outbox field, the relay,
the applied-events list or the revision. (Models: hexkit's ``DaoPublisher``, eventuate's
``ResultWithEvents``.) Typed records and the one optimistic retry sit on top, in
:mod:`kyso_kit.records`.

Three idempotency idioms are legitimate; each is a single-document guarantee:

1. **Once per causing event** (``caused_by=event.id``): the filter also requires
   ``applied_events != event.id`` and the update pushes the id, so applying the event and remembering
   it are one write. Atomic on MongoDB (every single-document write is) and on the project's FerretDB
   build, whose patch ``deploy/patches/ferretdb-write-lock.patch`` serialises write commands
   (``tests/integration/test_database_atomicity.py`` checks it on any server); no multi-document
   transaction is needed, which FerretDB v1 does not have.
2. **Field-absence guards** (``{"sealed_at": {"$exists": False}}``, :func:`absent`): a step that
   happens once in a record's life sets a field, and its write requires the field to be missing.
3. **Unique-id inserts** (``_id`` derived from what must happen once, :func:`insert_once`): the
   second insert hits the unique key and changes nothing.

What the aggregate remembers is bounded: ``applied_events`` keeps the last :data:`APPLIED_KEEP` ids
(trimmed, in a separate write guarded by the revision, once it holds more than :data:`APPLIED_TRIM_AT`;
FerretDB v1 ignores ``$slice`` inside ``$push``). The consumer's inbox (``processed_events``, kept longer
than Kafka's retention) is the long memory: every redelivery Kafka can make is checked there first.
The aggregate's list covers only the window the inbox cannot, a crash between the effect's write and
the inbox record; the redelivery then comes when the partition is consumed again, long before
:data:`APPLIED_KEEP` further events could reach the same document (an order sees about ten in its life).

Revision: every update (``update``, ``update_and_get``, ``update_many``) increments the store-owned
``_rev`` field, so a reader can guard its write by "nothing changed since I read" however the other
writes were made (:meth:`Aggregates.get_with_revision`; used by :meth:`kyso_kit.records.Repository.modify`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from kyso_contracts import CloudEvent, Payload, wrap

from ..clock import SYSTEM_CLOCK, Clock
from ..logs import current_correlation_id
from ..outbox import OUTBOX_FIELD, PENDING_FIELD, outbox_entry
from ..tracing import current_trace_context

Doc = dict[str, Any]
EventLike = Payload | CloudEvent[Any]
APPLIED_FIELD = "applied_events"
REVISION_FIELD = "_rev"
APPLIED_KEEP = 32
"""How many applied event ids an aggregate keeps (the inbox is the long memory; module docstring)."""
APPLIED_TRIM_AT = 48
"""Trim back to :data:`APPLIED_KEEP` once the list holds more than this (one extra write per 16 events)."""
_HIDDEN = (OUTBOX_FIELD, APPLIED_FIELD, PENDING_FIELD, REVISION_FIELD)


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

    async def get_with_revision(self, doc_id: Any) -> tuple[Doc, int] | None:
        """The document and its revision (0: never updated), for a write guarded by "unchanged since"."""
        ...

    async def applied(self, doc_id: Any, event_id: str) -> bool:
        """Does the document remember having applied ``event_id`` (``caused_by=``)?"""
        ...

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


# --------------------------------------------------------------------------- the named idioms


def absent(field: str) -> Doc:
    """Idiom 2, the field-absence guard: a filter term that holds until ``field`` is first set."""
    return {field: {"$exists": False}}


async def insert_once(port: Aggregates, doc: Doc, *, events: Sequence[EventLike] = ()) -> bool:
    """Idiom 3, the unique-id insert: True if ``doc`` was inserted, False if its key was taken (done before)."""
    try:
        await port.insert(doc, events=events)
    except DuplicateKey:
        return False
    return True


# --------------------------------------------------------------------------- shared by both implementations


def revision_guard(rev: int) -> Doc:
    """The filter term "the document's revision is still ``rev``" (a never-updated one has no field)."""
    return {REVISION_FIELD: rev} if rev else {REVISION_FIELD: {"$exists": False}}


def _guarded(filter: Doc, update: Doc, caused_by: str | None) -> tuple[Doc, Doc]:
    """Add the revision bump and the once-per-causing-event guard; ``update`` is the store's own copy."""
    update.setdefault("$inc", {})[REVISION_FIELD] = 1
    if caused_by is None:
        return filter, update
    update.setdefault("$push", {})[APPLIED_FIELD] = caused_by
    return {**filter, APPLIED_FIELD: {"$ne": caused_by}}, update


def _copy_update(update: Doc) -> Doc:
    for op in update:
        if not op.startswith("$"):
            raise ValueError("updates are made of operators ($set, $inc, …), never a whole replacement document")
        if any(f.split(".")[0] in _HIDDEN for f in update[op]):
            raise ValueError("the outbox, applied-events and revision fields belong to the store")
    return {k: dict(v) for k, v in update.items()}


def _hide(doc: Doc | None) -> Doc | None:
    if doc is None:
        return None
    return {k: v for k, v in doc.items() if k not in _HIDDEN}


def _trimmed(doc: Doc) -> Doc | None:
    """The guarded write that trims ``doc``'s applied-events memory, or None while it is short enough."""
    applied = doc.get(APPLIED_FIELD) or []
    if len(applied) <= APPLIED_TRIM_AT:
        return None
    return {"$set": {APPLIED_FIELD: applied[-APPLIED_KEEP:]}}


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
