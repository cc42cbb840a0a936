"""The in-memory fake of the store port, for the fast service-level tests: a small interpreter of the
MongoDB filters and update operators the services use, with the same semantics as
:mod:`kyso_kit.store.mongodb` (each call is atomic because it never yields to the event loop).
``tests/integration/test_store_semantics.py`` runs every scenario against both."""

from __future__ import annotations

import copy
import operator
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from kyso_contracts import CloudEvent, Payload, parse_event

from .port import (
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
)

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

    async def get_with_revision(self, doc_id: Any) -> tuple[Doc, int] | None:
        doc = self.docs.get(doc_id)
        hidden = _hide(copy.deepcopy(doc))
        return None if doc is None or hidden is None else (hidden, int(doc.get(REVISION_FIELD, 0)))

    async def applied(self, doc_id: Any, event_id: str) -> bool:
        doc = self.docs.get(doc_id)
        return doc is not None and event_id in (doc.get(APPLIED_FIELD) or [])

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
        if caused_by is not None and (trim := _trimmed(candidate)) is not None:
            _apply(candidate, trim, False)  # what the Mongo adapter's separate trimming write leaves
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
        upd.setdefault("$inc", {})[REVISION_FIELD] = 1
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
