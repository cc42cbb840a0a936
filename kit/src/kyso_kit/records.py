"""Typed records over the store port, and the one optimistic retry: ``Repository.modify``.

hexkit types its DAOs by model (``Dao[Dto]``); eventuate puts ``@Version`` on the entity and one
retry around every handler. Here a record type is a pydantic model (:class:`Record`), a
:class:`Repository` reads and writes it through a collection of the store port, and every change
that is "read, decide, write if nothing changed, else read again" is one call::

    async def _report(self, event, order_id, reported):
        def decide(order: Order) -> Decision[Order] | None:      # pure: no I/O, no clock, no new ids
            status = domain.advance(order.status, reported)       # or raise a DomainError: nothing is written
            return decided(order.model_copy(update={"status": status}))
        done = await self.orders.modify(order_id, decide, caused_by=event.id)

The write ``$set``s (and ``$unset``s) only the top-level fields the decision changed, appends the
decision's events to the outbox in the same write, and is guarded by the document's revision (the
store bumps it on every update, however it was made: :mod:`kyso_kit.store.port`). When the guard
fails, either ``caused_by`` was applied before (a duplicate: nothing to do, ``changed=False``), or the
record changed since it was read: it is read and decided again, at most ``attempts`` times, then
:class:`Contended`. Under contention each retry means another writer won, so the bound is only hit
by a storm on one record; the callers map it to their own answer (a retry of the event, "busy").

The operator port stays underneath (:attr:`Repository.aggregates`) for what needs operators:
counters that must not be lost under concurrency without a read (``$inc`` with a guard), upserts
that create a record from an event, ``update_many``, indexes.

Idempotency: besides ``caused_by=`` (idiom 1, :data:`ONCE_PER_EVENT`), a decision may rely on a
field-absence guard (idiom 2: the record is read, so ``decide`` returns None when the field is set;
the revision guard makes that check and the write one step) and a record may be inserted once under
an id derived from what must happen once (idiom 3, :meth:`Repository.insert_once`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import Annotated, Any, Generic, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from .store import Aggregates, Doc, DuplicateKey, EventLike, Store, revision_guard

ONCE_PER_EVENT = "caused_by"
"""Idiom 1: pass ``caused_by=event.id`` to apply an event to a record at most once."""


def _utc(value: Any) -> Any:
    return value.replace(tzinfo=UTC) if isinstance(value, datetime) and value.tzinfo is None else value


Utc = Annotated[datetime, BeforeValidator(_utc)]
"""A datetime that is always aware: some drivers hand back naive UTC."""


class Record(BaseModel):
    """A stored record: ``id`` is the document's ``_id``; fields the model does not name are kept as read
    (``extra="allow"``) and written back only if a decision changes them."""

    model_config = ConfigDict(populate_by_name=True, extra="allow", use_enum_values=True)

    id: str = Field(alias="_id")

    def to_doc(self) -> Doc:
        """The stored form: enum members as their values (a decision may set a member)."""
        return {k: v.value if isinstance(v, Enum) else v for k, v in self.model_dump(by_alias=True).items()}


R = TypeVar("R", bound=Record)


@dataclass(frozen=True)
class Decision(Generic[R]):
    """What a pure decision returns: the record as it should be, and the events the change causes."""

    record: R
    events: Sequence[EventLike] = ()


def decided(record: R, *events: EventLike) -> Decision[R]:
    return Decision(record, tuple(events))


@dataclass(frozen=True)
class Modified(Generic[R]):
    """What :meth:`Repository.modify` did: ``record`` after the write (or as read, if nothing was written)."""

    record: R
    changed: bool
    events: tuple[EventLike, ...] = ()


class Contended(RuntimeError):
    """The record kept changing under :meth:`Repository.modify` for all its attempts."""


def changes(before: Doc, after: Doc) -> Doc:
    """The update operators that turn ``before`` into ``after`` (top-level fields; ``_id`` never changes)."""
    if after.get("_id") != before.get("_id"):
        raise ValueError("a decision never changes a record's id")
    sets = {k: v for k, v in after.items() if k != "_id" and (k not in before or before[k] != v)}
    unsets = {k: "" for k in before if k not in after}
    update: Doc = {}
    if sets:
        update["$set"] = sets
    if unsets:
        update["$unset"] = unsets
    return update


class Repository(Generic[R]):
    """Typed access to one collection: records of type ``model`` in, records out."""

    def __init__(self, store: Store, name: str, model: type[R], *, events: bool = False, attempts: int = 16) -> None:
        self.aggregates: Aggregates = store.collection(name, events=events)
        self.model = model
        self.attempts = attempts

    def _load(self, doc: Doc) -> R:
        return self.model.model_validate(doc)

    async def get(self, doc_id: str) -> R | None:
        doc = await self.aggregates.get(doc_id)
        return None if doc is None else self._load(doc)

    async def find_one(self, filter: Doc) -> R | None:
        doc = await self.aggregates.find_one(filter)
        return None if doc is None else self._load(doc)

    async def find(self, filter: Doc, *, limit: int = 0, sort: tuple[str, int] | None = None) -> list[R]:
        return [self._load(d) for d in await self.aggregates.find(filter, limit=limit, sort=sort)]

    async def insert(self, record: R, *, events: Sequence[EventLike] = ()) -> None:
        """Insert a new record; :class:`~kyso_kit.store.DuplicateKey` if a unique key is taken."""
        await self.aggregates.insert(record.to_doc(), events=events)

    async def insert_once(self, record: R, *, events: Sequence[EventLike] = ()) -> bool:
        """Idiom 3: True if inserted, False if a record with this key exists (it was done before)."""
        try:
            await self.insert(record, events=events)
        except DuplicateKey:
            return False
        return True

    async def modify(
        self,
        doc_id: str,
        decide: Callable[[R], Decision[R] | None],
        *,
        caused_by: str | None = None,
        guard: Doc | None = None,
        attempts: int | None = None,
    ) -> Modified[R] | None:
        """Read the record, let ``decide`` (pure) say what it becomes, write that if nothing changed since.

        ``decide`` gets the record as read and returns a :class:`Decision` (the new record and its
        events), None (nothing to do), or raises a domain error (propagated; nothing is written). It
        may be called more than once, so it must not read the clock or draw ids itself.
        ``caused_by``: at most once per that event id; a duplicate answers ``changed=False``.
        ``guard``: extra filter terms the write also requires. Returns None if there is no record with
        this id (``decide`` is not called); raises :class:`Contended` after ``attempts`` lost races."""
        for _ in range(attempts or self.attempts):
            read = await self.aggregates.get_with_revision(doc_id)
            if read is None:
                return None
            doc, rev = read
            current = self._load(doc)
            decision = decide(current.model_copy(deep=True))
            if decision is None:
                return Modified(current, changed=False)
            update = changes(current.to_doc(), decision.record.to_doc())
            if not update and not decision.events:
                return Modified(current, changed=False)
            flt = {**(guard or {}), "_id": doc_id, **revision_guard(rev)}
            after = await self.aggregates.update_and_get(flt, update, events=decision.events, caused_by=caused_by)
            if after is not None:
                return Modified(self._load(after), changed=True, events=tuple(decision.events))
            if caused_by is not None and await self.aggregates.applied(doc_id, caused_by):
                return Modified(current, changed=False)
        raise Contended(f"{self.aggregates.name} {doc_id} kept changing for {attempts or self.attempts} attempts")
