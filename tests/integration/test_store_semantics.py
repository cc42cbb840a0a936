"""The kit's store and its in-memory fake behave the same: every scenario runs against the real
database (through ``MongoStore``) and against ``MemoryStore``, so the service-level tests that use
the fake check what production does."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from kyso_contracts import OtpMethodChanged
from kyso_kit import mongo
from kyso_kit.clock import FakeClock
from kyso_kit.errors import IllegalTransition
from kyso_kit.outbox import OutboxRelay
from kyso_kit.records import Contended, Decision, Modified, Record, Repository, decided
from kyso_kit.store import (
    APPLIED_KEEP,
    APPLIED_TRIM_AT,
    DuplicateKey,
    EventFactory,
    MemoryStore,
    MongoStore,
    Store,
    absent,
    insert_once,
)

from ..conftest import Servers


async def _no_publish(entry: dict[str, Any]) -> None:
    raise AssertionError("the relay of this test never runs")


@pytest.fixture(params=["mongo", "memory"])
async def store(request: pytest.FixtureRequest, servers: Servers, unique: str) -> AsyncIterator[Store]:
    factory = EventFactory("/kyso/test", FakeClock())
    if request.param == "memory":
        yield MemoryStore(factory)
        return
    client = mongo.client(servers.mongodb_url)
    try:
        yield MongoStore(client[f"store_{unique}"], factory, OutboxRelay([], _no_publish))
    finally:
        await client.close()


def changed(account: str) -> OtpMethodChanged:
    return OtpMethodChanged(account_id=account, method="smartotp", previous="sms", changed_at=datetime.now(UTC))


async def test_unique_keys_are_enforced_on_insert_and_on_update(store: Store) -> None:
    coll = store.collection("things")
    await coll.ensure_index([("phone", 1)], unique=True)
    await coll.insert({"_id": "a", "phone": "1"})
    await coll.insert({"_id": "b", "phone": "2"})
    for dup in ({"_id": "a", "phone": "3"}, {"_id": "c", "phone": "1"}):
        with pytest.raises(DuplicateKey):
            await coll.insert(dup)
    with pytest.raises(DuplicateKey):
        await coll.update({"_id": "b"}, {"$set": {"phone": "1"}})
    assert (await coll.get("b")) == {"_id": "b", "phone": "2"}


async def test_a_guard_that_does_not_hold_changes_nothing(store: Store) -> None:
    coll = store.collection("things", events=True)
    await coll.insert({"_id": "a", "status": "pending", "n": 0})
    assert not await coll.update({"_id": "a", "status": "done"}, {"$inc": {"n": 1}}, events=[changed("a")])
    assert await coll.update_and_get({"_id": "b"}, {"$inc": {"n": 1}}) is None
    after = await coll.update_and_get({"_id": "a", "status": "pending"}, {"$set": {"status": "done"}, "$inc": {"n": 2}})
    assert after == {"_id": "a", "status": "done", "n": 2}  # the store's own fields never show


async def test_each_causing_event_applies_once_even_when_events_race_to_create(store: Store) -> None:
    coll = store.collection("views")
    await coll.ensure_index([("order_id", 1)], unique=True)

    async def apply(event_id: str, field: str) -> bool:
        return await coll.update(
            {"order_id": "o1"}, {"$set": {field: True}}, caused_by=event_id, upsert_with={"_id": f"{event_id}-doc"}
        )

    results = await asyncio.gather(apply("e1", "a"), apply("e2", "b"), apply("e1", "a"), apply("e2", "b"))
    assert results.count(True) == 2
    [doc] = await coll.find({"order_id": "o1"})
    assert doc["a"] is True and doc["b"] is True
    assert not await apply("e1", "a")


async def test_update_operators_and_queries_agree(store: Store) -> None:
    coll = store.collection("ops")
    await coll.insert({"_id": "x", "n": 1, "tags": ["a"], "nested": {"k": 1}, "gone": True, "list": [1, 2, 3]})
    await coll.update(
        {"_id": "x"},
        {
            "$inc": {"n": 2},
            "$max": {"high": 5},
            "$push": {"tags": {"$each": ["b", "c"]}},
            "$set": {"nested.k": 2, "nested.new": "v"},
            "$unset": {"gone": ""},
            "$addToSet": {"set": "s"},
            "$pop": {"list": -1},
        },
    )
    assert await coll.get("x") == {
        "_id": "x",
        "n": 3,
        "high": 5,
        "tags": ["a", "b", "c"],
        "nested": {"k": 2, "new": "v"},
        "set": ["s"],
        "list": [2, 3],
    }
    await coll.insert({"_id": "y", "n": 10, "tags": ["z"]})
    await coll.insert({"_id": "z", "n": 7})
    assert [d["_id"] for d in await coll.find({"n": {"$gte": 3, "$lt": 10}}, sort=("n", -1))] == ["z", "x"]
    assert [d["_id"] for d in await coll.find({}, sort=("n", 1), limit=2)] == ["x", "z"]
    assert await coll.count({"tags": "b"}) == 1
    assert await coll.count({"tags": {"$exists": False}}) == 1
    assert await coll.count({"_id": {"$in": ["x", "y"]}, "n": {"$ne": 3}}) == 1
    assert await coll.count({"_id": {"$nin": ["x"]}}) == 2
    assert await coll.find_one({"nested.k": 2}, {"n": 1}) == {"_id": "x", "n": 3}
    assert await coll.update_many({"n": {"$gt": 5}}, {"$set": {"big": True}}) == 2
    assert await coll.delete_many({"big": True}) == 2
    assert await coll.count({}) == 1


async def test_events_are_written_with_the_change_and_refused_where_not_registered(store: Store) -> None:
    plain = store.collection("plain")
    with pytest.raises(ValueError):
        await plain.insert({"_id": "a"}, events=[changed("a")])
    coll = store.collection("methods", events=True)
    await coll.insert({"_id": "a", "v": 1}, events=[changed("a")])
    assert await coll.update({"_id": "a"}, {"$set": {"v": 2}}, events=[changed("a")], caused_by="cause-1")
    assert await coll.get("a") == {"_id": "a", "v": 2}
    with pytest.raises(ValueError):
        await coll.update({"_id": "a"}, {"$set": {"outbox": []}})
    if isinstance(store, MemoryStore):
        published = store.of_type(OtpMethodChanged)
        assert [e.causationid for e in published] == [None, "cause-1"]
    else:
        raw = await coll.raw.find_one({"_id": "a"})  # type: ignore[attr-defined]
        assert [e["value"].get("causationid") for e in raw["outbox"]] == [None, "cause-1"]
        assert await coll.delete_many({}) == 0  # never deletes a document with unpublished events


# --------------------------------------------------------------------------- typed records and modify()


class Counter(Record):
    status: str = "open"
    n: int = 0
    note: str | None = None


def bump_to(limit: int) -> Callable[[Counter], Decision[Counter] | None]:
    """A pure decision: count up while open, close at ``limit``; a closed counter is a domain error."""

    def decide(c: Counter) -> Decision[Counter] | None:
        if c.status != "open":
            raise IllegalTransition("counter", c.status, "bump")
        n = c.n + 1
        return decided(c.model_copy(update={"n": n, "status": "closed" if n >= limit else "open"}), changed(c.id))

    return decide


async def test_modify_retries_every_lost_race_so_no_increment_is_lost(store: Store) -> None:
    repo = Repository(store, "counters", Counter, events=True, attempts=64)
    await repo.insert(Counter(_id="c"))
    results = await asyncio.gather(*(repo.modify("c", bump_to(100)) for _ in range(12)))
    assert all(r is not None and r.changed for r in results)
    after = await repo.get("c")
    assert after is not None and after.n == 12 and after.status == "open"
    assert sorted(r.record.n for r in results if r is not None) == list(range(1, 13))  # each saw its own write


async def test_modify_sees_operator_writes_made_between_its_read_and_its_write(store: Store) -> None:
    """Every update bumps the store's revision, so a decision taken on a stale read is taken again."""
    repo = Repository(store, "counters", Counter)
    await repo.insert(Counter(_id="c", n=4))
    seen: list[int] = []

    def decide(c: Counter) -> Decision[Counter]:
        seen.append(c.n)
        return decided(c.model_copy(update={"note": f"saw {c.n}"}))

    async def race() -> Modified[Counter] | None:
        read = repo.aggregates.get_with_revision
        first = True

        async def read_then_interfere(doc_id: Any) -> tuple[dict[str, Any], int] | None:
            nonlocal first
            got = await read(doc_id)
            if first:
                first = False
                assert await repo.aggregates.update({"_id": doc_id}, {"$inc": {"n": 1}})
            return got

        repo.aggregates.get_with_revision = read_then_interfere  # type: ignore[method-assign]
        try:
            return await repo.modify("c", decide)
        finally:
            del repo.aggregates.get_with_revision  # type: ignore[attr-defined]

    done = await race()
    assert seen == [4, 5] and done is not None and done.record.note == "saw 5" and done.record.n == 5
    assert await repo.aggregates.get("c") == {"_id": "c", "status": "open", "n": 5, "note": "saw 5"}


async def test_modify_applies_each_causing_event_once_and_writes_nothing_on_a_domain_error(store: Store) -> None:
    repo = Repository(store, "counters", Counter, events=True)
    await repo.insert(Counter(_id="c"))
    first, again = await asyncio.gather(
        repo.modify("c", bump_to(3), caused_by="e1"), repo.modify("c", bump_to(3), caused_by="e1")
    )
    assert first is not None and again is not None and {first.changed, again.changed} == {True, False}
    assert (await repo.get("c")).n == 1  # type: ignore[union-attr]
    assert (await repo.modify("c", bump_to(3), caused_by="e1")).changed is False  # type: ignore[union-attr]
    await repo.modify("c", bump_to(2), caused_by="e2")
    with pytest.raises(IllegalTransition):
        await repo.modify("c", bump_to(2), caused_by="e3")
    assert await repo.aggregates.get("c") == {"_id": "c", "status": "closed", "n": 2, "note": None}
    assert await repo.modify("missing", bump_to(2)) is None
    unchanged = await repo.modify("c", lambda c: None)
    assert unchanged is not None and not unchanged.changed


async def test_modify_gives_up_with_contended_when_the_record_never_holds_still(store: Store) -> None:
    repo = Repository(store, "counters", Counter, attempts=3)
    await repo.insert(Counter(_id="c"))
    calls = 0

    def decide(c: Counter) -> Decision[Counter]:
        nonlocal calls
        calls += 1
        return decided(c.model_copy(update={"n": c.n + 10}))

    read = repo.aggregates.get_with_revision

    async def read_then_interfere(doc_id: Any) -> tuple[dict[str, Any], int] | None:
        got = await read(doc_id)
        await repo.aggregates.update({"_id": doc_id}, {"$set": {"note": "moved"}})
        return got

    repo.aggregates.get_with_revision = read_then_interfere  # type: ignore[method-assign]
    with pytest.raises(Contended):
        await repo.modify("c", decide)
    assert calls == 3 and (await repo.aggregates.get("c"))["n"] == 0  # type: ignore[index]


async def test_the_applied_events_memory_keeps_the_last_ones_only(store: Store) -> None:
    coll = store.collection("views")
    await coll.insert({"_id": "v", "n": 0})
    total = APPLIED_TRIM_AT + 5
    for i in range(total):
        assert await coll.update({"_id": "v"}, {"$inc": {"n": 1}}, caused_by=f"e{i}")
    kept = [i for i in range(total) if await coll.applied("v", f"e{i}")]
    assert APPLIED_KEEP <= len(kept) <= APPLIED_TRIM_AT and kept == list(range(total - len(kept), total))
    assert not await coll.update({"_id": "v"}, {"$inc": {"n": 1}}, caused_by=f"e{total - 1}")  # recent: refused
    assert (await coll.get("v")) == {"_id": "v", "n": total}


async def test_the_other_two_named_idioms_hold_on_both_stores(store: Store) -> None:
    """Field-absence guards and unique-id inserts: the second attempt changes nothing."""
    coll = store.collection("once")
    assert await insert_once(coll, {"_id": "refund:txn-1", "n": 1})
    assert not await insert_once(coll, {"_id": "refund:txn-1", "n": 2})
    assert await coll.update({"_id": "refund:txn-1", **absent("sealed_at")}, {"$set": {"sealed_at": "first"}})
    assert not await coll.update({"_id": "refund:txn-1", **absent("sealed_at")}, {"$set": {"sealed_at": "again"}})
    assert await coll.get("refund:txn-1") == {"_id": "refund:txn-1", "n": 1, "sealed_at": "first"}
