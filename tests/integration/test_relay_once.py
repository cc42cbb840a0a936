"""The outbox relay produces each event once when nothing crashes — on the real database and broker.

Each test holds the broker at a chosen event (an :class:`asyncio.Event`, never a sleep), makes a
sweep, a nudge, another relay or another write happen while it is held, then reads the topic back
and counts every event id. A copy is allowed only after a crash between produce and clear (see
``test_kit_reliability``); here nothing crashes, so each id must appear exactly once.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from kyso_contracts import topics
from kyso_kit import mongo
from kyso_kit.broker import ensure_topics
from kyso_kit.clock import FakeClock
from kyso_kit.outbox import OutboxRelay
from kyso_kit.store import EventFactory, MongoAggregates, MongoStore

from ..conftest import Servers
from .test_kit_reliability import order_event, read_topic


class HeldBroker:
    """A real Kafka producer whose publish of a chosen event waits until the test lets it go."""

    def __init__(self, producer: AIOKafkaProducer) -> None:
        self._producer = producer
        self._gates: dict[str, tuple[asyncio.Event, asyncio.Event]] = {}
        self.fail_at: set[str] = set()
        self.calls: list[str] = []

    def hold(self, event_id: str) -> tuple[asyncio.Event, asyncio.Event]:
        """(reached, release): ``reached`` is set when the relay is about to produce ``event_id``."""
        gate = (asyncio.Event(), asyncio.Event())
        self._gates[event_id] = gate
        return gate

    async def publish(self, entry: dict[str, Any]) -> None:
        eid = entry["id"]
        self.calls.append(eid)
        gate = self._gates.pop(eid, None)
        if gate is not None:
            gate[0].set()
            await gate[1].wait()
        if eid in self.fail_at:
            self.fail_at.discard(eid)
            raise ConnectionError("broker unreachable")
        value = json.dumps(entry["value"], separators=(",", ":")).encode()
        await self._producer.send_and_wait(entry["topic"], value, key=entry["key"].encode())


@pytest.fixture
async def broker(servers: Servers) -> AsyncIterator[HeldBroker]:
    await ensure_topics(servers.kafka_bootstrap, [topics.REGISTRATION])
    producer = AIOKafkaProducer(bootstrap_servers=servers.kafka_bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        yield HeldBroker(producer)
    finally:
        await producer.stop()


@pytest.fixture
async def db(servers: Servers, unique: str) -> AsyncIterator[Any]:
    client = mongo.client(servers.mongodb_url)
    try:
        yield client[f"relay_{unique}"]
    finally:
        await client.drop_database(f"relay_{unique}")
        await client.close()


async def service(db: Any, broker: HeldBroker) -> tuple[OutboxRelay, MongoAggregates]:
    """One service instance: its relay (already running a first, empty sweep) and its orders."""
    relay = OutboxRelay([], broker.publish)
    orders = MongoStore(db, EventFactory("/kyso/test", FakeClock()), relay).collection("orders", events=True)
    await relay.drain_once()
    return relay, orders


async def produced(servers: Servers, key_prefix: str) -> Counter[str]:
    records = await read_topic(servers.kafka_bootstrap, topics.REGISTRATION, key_prefix, timeout_ms=1500)
    return Counter(json.loads(r.value)["id"] for r in records)


async def test_a_sweep_and_a_nudge_interleaving_while_the_broker_is_held_produce_each_event_once(
    db: Any, broker: HeldBroker, servers: Servers, unique: str
) -> None:
    relay, orders = await service(db, broker)
    oid = f"{unique}-sweep"
    first, second = order_event(oid), order_event(oid)
    await orders.insert({"_id": oid, "n": 0}, events=[first])  # nudged, with the document it wrote

    reached, release = broker.hold(first.id)
    sweep = asyncio.create_task(relay.drain_once())  # the sweep finds it first and reaches the broker
    await reached.wait()
    # While the broker holds the sweep's publish, a write appends to the same outbox (a second nudge).
    assert await orders.update({"_id": oid}, {"$inc": {"n": 1}}, events=[second])
    release.set()
    await sweep
    await relay.drain_targets()  # the nudges: their copies still show `first`, which the sweep cleared
    await relay.drain_once()

    assert (await orders.raw.find_one({"_id": oid}))["outbox"] == []
    assert await produced(servers, oid) == Counter({first.id: 1, second.id: 1})


async def test_a_publish_held_while_a_second_document_is_written_produces_each_event_once(
    db: Any, broker: HeldBroker, servers: Servers, unique: str
) -> None:
    relay, orders = await service(db, broker)
    x, y = f"{unique}-x", f"{unique}-y"
    x1, x2, y1 = order_event(x), order_event(x), order_event(y)
    await orders.insert({"_id": x, "n": 0}, events=[x1])

    reached, release = broker.hold(x1.id)
    nudged = asyncio.create_task(relay.drain_targets())
    await reached.wait()
    assert await orders.update({"_id": x}, {"$inc": {"n": 1}}, events=[x2])  # the same document again
    await orders.insert({"_id": y, "n": 0}, events=[y1])  # and another one
    release.set()
    assert await nudged == 1
    assert await relay.drain_targets() == 2  # x2 and y1, not x1 again from the copy x2's write returned
    assert await relay.drain_once() == 0

    assert await produced(servers, unique) == Counter({x1.id: 1, x2.id: 1, y1.id: 1})


async def test_another_instance_never_publishes_what_a_live_relay_is_publishing(
    db: Any, broker: HeldBroker, servers: Servers, unique: str
) -> None:
    writer, orders = await service(db, broker)
    other, _ = await service(db, broker)  # a second instance of the same service, same collection
    oid = f"{unique}-two"
    event = order_event(oid)
    await orders.insert({"_id": oid}, events=[event])

    reached, release = broker.hold(event.id)
    nudged = asyncio.create_task(writer.drain_targets())
    await reached.wait()
    assert await other.drain_once() == 0  # its sweep sees the event, owned by a relay whose lease is live
    release.set()
    assert await nudged == 1
    assert await other.drain_once() == 0 and await writer.drain_once() == 0

    assert await produced(servers, oid) == Counter({event.id: 1})


async def test_a_publish_that_fails_midway_is_not_repeated_for_what_already_went_out(
    db: Any, broker: HeldBroker, servers: Servers, unique: str
) -> None:
    relay, orders = await service(db, broker)
    oid = f"{unique}-outage"
    first, second = order_event(oid), order_event(oid)
    await orders.insert({"_id": oid}, events=[first, second])

    broker.fail_at.add(second.id)  # the broker goes away after the first of the two
    with pytest.raises(ConnectionError):
        await relay.drain_targets()
    assert [e["id"] for e in (await orders.raw.find_one({"_id": oid}))["outbox"]] == [second.id]
    assert await relay.drain_targets() == 1  # the retry: only what did not go out
    assert await relay.drain_once() == 0

    assert broker.calls == [first.id, second.id, second.id]
    assert await produced(servers, oid) == Counter({first.id: 1, second.id: 1})
