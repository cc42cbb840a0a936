"""The kit's store and its in-memory fake behave the same: every scenario runs against the real
database (through ``MongoStore``) and against ``MemoryStore``, so the service-level tests that use
the fake check what production does."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest

from kyso_contracts import OtpMethodChanged
from kyso_kit import mongo
from kyso_kit.clock import FakeClock
from kyso_kit.outbox import OutboxRelay
from kyso_kit.store import DuplicateKey, EventFactory, MemoryStore, MongoStore, Store

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
