"""The outbox relay's once-only rules, fast: the kit's real ``MongoStore`` and ``OutboxRelay`` over a small
in-memory collection that speaks the subset of PyMongo's async API they use (filters and updates are
evaluated by the in-memory store's own ``matches``/``_apply``, which ``test_store_semantics`` holds
to the real database). Interleavings are forced with events, never sleeps; the same scenarios run
against FerretDB and Kafka in ``tests/integration/test_relay_once.py``."""

from __future__ import annotations

import asyncio
import copy
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from kyso_contracts import CloudEvent, OrderPlaced, SubscriberIdentity, wrap
from kyso_kit.clock import FakeClock
from kyso_kit.outbox import LEASES, OutboxRelay
from kyso_kit.store import EventFactory, MongoAggregates, MongoStore, _apply, _project, matches


@dataclass
class _Result:
    matched_count: int
    modified_count: int


class _Cursor:
    def __init__(self, docs: list[dict[str, Any]]) -> None:
        self._docs = docs

    def limit(self, n: int) -> _Cursor:
        return _Cursor(self._docs[:n] if n else self._docs)

    async def to_list(self, _: Any) -> list[dict[str, Any]]:
        return self._docs


class FakeCollection:
    """One collection; every call is atomic (it never yields), as each single-document write is."""

    def __init__(self, name: str, database: FakeDatabase) -> None:
        self.name = name
        self.database = database
        self.docs: dict[Any, dict[str, Any]] = {}

    def _first(self, flt: dict[str, Any]) -> dict[str, Any] | None:
        return next((d for d in self.docs.values() if matches(d, flt)), None)

    async def create_index(self, *_: Any, **__: Any) -> None:
        return None

    async def insert_one(self, doc: dict[str, Any]) -> None:
        assert doc["_id"] not in self.docs
        self.docs[doc["_id"]] = copy.deepcopy(doc)

    async def find_one(self, flt: dict[str, Any], projection: dict[str, Any] | None = None) -> dict[str, Any] | None:
        doc = self._first(flt)
        return None if doc is None else _project(doc, projection)

    def find(self, flt: dict[str, Any], projection: dict[str, Any] | None = None) -> _Cursor:
        return _Cursor([_project(d, projection) for d in self.docs.values() if matches(d, flt)])

    async def update_one(self, flt: dict[str, Any], update: dict[str, Any], upsert: bool = False) -> _Result:
        doc = self._first(flt)
        if doc is None:
            return _Result(0, 0)
        before = copy.deepcopy(doc)
        _apply(doc, update, False)
        return _Result(1, int(doc != before))

    async def find_one_and_update(self, flt: dict[str, Any], update: dict[str, Any], **_: Any) -> dict[str, Any] | None:
        doc = self._first(flt)
        if doc is None:
            return None
        _apply(doc, update, False)
        return copy.deepcopy(doc)

    async def delete_many(self, flt: dict[str, Any]) -> _Result:
        gone = [k for k, d in self.docs.items() if matches(d, flt)]
        for k in gone:
            del self.docs[k]
        return _Result(len(gone), len(gone))


class FakeDatabase:
    def __init__(self) -> None:
        self._collections: dict[str, FakeCollection] = {}

    def __getitem__(self, name: str) -> FakeCollection:
        return self._collections.setdefault(name, FakeCollection(name, self))


class HeldBroker:
    """Records what it produced; a chosen event's publish waits until the test lets it go."""

    def __init__(self) -> None:
        self.produced: list[str] = []
        self._gates: dict[str, tuple[asyncio.Event, asyncio.Event]] = {}

    def hold(self, event_id: str) -> tuple[asyncio.Event, asyncio.Event]:
        gate = (asyncio.Event(), asyncio.Event())
        self._gates[event_id] = gate
        return gate

    async def publish(self, entry: dict[str, Any]) -> None:
        gate = self._gates.pop(entry["id"], None)
        if gate is not None:
            gate[0].set()
            await gate[1].wait()
        self.produced.append(entry["id"])


def order(order_id: str) -> CloudEvent[OrderPlaced]:
    return wrap(
        OrderPlaced(
            order_id=order_id, account_id="acct", registration_id="reg",
            subscriber=SubscriberIdentity(citizen_id="001099012345", full_name="Phạm Văn D",
                                          date_of_birth=date(1991, 3, 4)),
            email="d@example.vn", package_code="PERSONAL_1Y", validity_years=1, amount_vnd=800_000,
            placed_at=datetime.now(UTC),
        ),
        source="/kyso/test", correlation_id="c",
    )  # fmt: skip


async def instance(db: FakeDatabase, broker: HeldBroker) -> tuple[OutboxRelay, MongoAggregates]:
    relay = OutboxRelay([], broker.publish)
    orders = MongoStore(db, EventFactory("/kyso/test", FakeClock()), relay).collection(  # type: ignore[arg-type]
        "orders", events=True
    )
    await relay.drain_once()  # running: it holds its lease before anything is written
    return relay, orders


async def test_a_sweep_and_a_nudge_interleaving_while_the_broker_is_held_produce_each_event_once() -> None:
    db, broker = FakeDatabase(), HeldBroker()
    relay, orders = await instance(db, broker)
    first, second = order("o"), order("o")
    await orders.insert({"_id": "o"}, events=[first])
    reached, release = broker.hold(first.id)
    sweep = asyncio.create_task(relay.drain_once())
    await reached.wait()
    await orders.update({"_id": "o"}, {"$set": {"n": 1}}, events=[second])  # nudged with [first, second]
    release.set()
    assert await sweep == 1
    assert await relay.drain_targets() == 1
    assert Counter(broker.produced) == Counter({first.id: 1, second.id: 1})
    assert db["orders"].docs["o"]["outbox"] == [] and "outbox_pending" not in db["orders"].docs["o"]


async def test_a_publish_held_while_a_second_document_is_written_produces_each_event_once() -> None:
    db, broker = FakeDatabase(), HeldBroker()
    relay, orders = await instance(db, broker)
    x1, x2, y1 = order("x"), order("x"), order("y")
    await orders.insert({"_id": "x"}, events=[x1])
    reached, release = broker.hold(x1.id)
    nudged = asyncio.create_task(relay.drain_targets())
    await reached.wait()
    await orders.update({"_id": "x"}, {"$set": {"n": 1}}, events=[x2])
    await orders.insert({"_id": "y"}, events=[y1])
    release.set()
    assert await nudged == 1
    assert await relay.drain_targets() == 2
    assert await relay.drain_once() == 0
    assert Counter(broker.produced) == Counter({x1.id: 1, x2.id: 1, y1.id: 1})


async def test_two_instances_sweeping_at_once_publish_a_dead_relays_events_once() -> None:
    db, broker = FakeDatabase(), HeldBroker()
    dead, orders = await instance(db, broker)
    event = order("d")
    await orders.insert({"_id": "d"}, events=[event])  # its process dies before its relay publishes
    a, _ = await instance(db, broker)
    b, _ = await instance(db, broker)
    assert await a.drain_once() == 0 and await b.drain_once() == 0  # the dead relay's lease still runs
    db[LEASES].docs[dead.owner]["until"] = datetime.now(UTC)  # …until it runs out

    reached, release = broker.hold(event.id)
    first = asyncio.create_task(a.drain_once())  # claims, then is held at the broker
    await reached.wait()
    assert await b.drain_once() == 0  # sees a's claim, with a's live lease
    release.set()
    assert await first == 1
    assert broker.produced == [event.id]


async def test_a_relay_whose_lease_ran_out_takes_a_new_name_and_leaves_its_old_entries_to_the_claim_rule() -> None:
    db, broker = FakeDatabase(), HeldBroker()
    relay, orders = await instance(db, broker)
    old = relay.owner
    event = order("f")
    await orders.insert({"_id": "f"}, events=[event])
    other, _ = await instance(db, broker)
    assert broker.produced == []
    # Another instance judged this relay dead (its lease is over) and took the entry: it published it.
    db[LEASES].docs[old]["until"] = datetime.now(UTC)
    assert await other.drain_once() == 1
    relay._renew_at = 0.0  # its next renewal is due: it finds its lease over
    assert await relay.drain_targets() == 0  # its copy of the document is not trusted
    assert relay.owner not in ("", old)
    assert broker.produced == [event.id]
