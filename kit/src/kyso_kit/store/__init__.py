"""Aggregates and the events their changes cause, written together — the one way services change state.

Three parts: :mod:`.port` (the :class:`Aggregates`/:class:`Store` protocols, the idempotency idioms and
what both implementations share), :mod:`.mongodb` (the port on MongoDB or the patched FerretDB) and
:mod:`.memory` (the in-memory interpreter the service tests use). Typed records and the one optimistic
retry are in :mod:`kyso_kit.records`. Every public name is re-exported here, so
``from kyso_kit.store import Store, Doc, ...`` is how the rest of the code imports it.
"""

from .memory import MemoryAggregates, MemoryStore, _apply, _get, _project, matches
from .mongodb import MongoAggregates, MongoStore
from .port import (
    APPLIED_FIELD,
    APPLIED_KEEP,
    APPLIED_TRIM_AT,
    REVISION_FIELD,
    Aggregates,
    Doc,
    DuplicateKey,
    EventFactory,
    EventLike,
    Store,
    absent,
    insert_once,
    revision_guard,
)

__all__ = [
    "APPLIED_FIELD",
    "APPLIED_KEEP",
    "APPLIED_TRIM_AT",
    "REVISION_FIELD",
    "Aggregates",
    "Doc",
    "DuplicateKey",
    "EventFactory",
    "EventLike",
    "MemoryAggregates",
    "MemoryStore",
    "MongoAggregates",
    "MongoStore",
    "Store",
    "_apply",
    "_get",
    "_project",
    "absent",
    "insert_once",
    "matches",
    "revision_guard",
]
