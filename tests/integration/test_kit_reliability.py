"""The service kit against the real broker and database: outbox crash, duplicates, poison, retries."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, date, datetime
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from kyso_contracts import CloudEvent, OrderPlaced, SubscriberIdentity, topics, wrap
from kyso_kit.broker import publish_entry
from kyso_kit.outbox import LEASES, OutboxRelay
from kyso_kit.runtime import ServiceRuntime
from kyso_kit.settings import ServiceSettings
from kyso_kit.store import MongoStore

from ..conftest import Servers


async def until(check: Callable[[], Awaitable[bool]], timeout: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError("condition not reached")
        await asyncio.sleep(0.1)


def order_event(order_id: str, correlation: str = "test") -> CloudEvent[OrderPlaced]:
    return wrap(
        OrderPlaced(
            order_id=order_id, account_id="acct", registration_id="reg",
            subscriber=SubscriberIdentity(citizen_id="001099012345", full_name="Phạm Văn D",
                                          date_of_birth=date(1991, 3, 4)),
            email="d@example.vn", package_code="PERSONAL_1Y", validity_years=1, amount_vnd=800_000,
            placed_at=datetime.now(UTC),
        ),
        source="/kyso/test", correlation_id=correlation,
    )  # fmt: skip


class Probe:
    """A minimal service built from the kit: counts OrderPlaced per order, non-idempotently on purpose."""

    def __init__(self, servers: Servers, unique: str) -> None:
        settings = ServiceSettings(  # type: ignore[call-arg]
            service_name=f"probe{unique}",
            KAFKA_BOOTSTRAP_SERVERS=servers.kafka_bootstrap,
            MONGODB_URL=servers.mongodb_url,
            CONSUMER_MAX_ATTEMPTS=3,
            CONSUMER_BACKOFF_SECONDS=0.05,
            OUTBOX_POLL_SECONDS=0.1,
        )
        self.unique = unique
        self.rt = ServiceRuntime(settings, publishes=[OrderPlaced])
        self.effects = self.rt.db["effects"]
        self.calls: dict[str, int] = {}
        self.rt.consumer.on(OrderPlaced)(self.handle)

    async def handle(self, event: CloudEvent[OrderPlaced]) -> None:
        oid = event.data.order_id
        if not oid.startswith(self.unique):
            return  # other tests' events on the shared topic
        self.calls[oid] = self.calls.get(oid, 0) + 1
        if "failalways" in oid or ("failonce" in oid and self.calls[oid] == 1):
            raise RuntimeError(f"technical fault for {oid}")
        # Deliberately NOT idempotent by itself: only the kit's inbox stands between a duplicate and a double count.
        await self.effects.update_one({"_id": oid}, {"$inc": {"count": 1}}, upsert=True)

    async def count(self, oid: str) -> int:
        doc = await self.effects.find_one({"_id": oid})
        return int(doc["count"]) if doc else 0


@pytest.fixture
async def probe(servers: Servers, unique: str) -> AsyncIterator[Probe]:
    p = Probe(servers, unique)
    await p.rt.start()
    try:
        yield p
    finally:
        await p.rt.stop()


@pytest.fixture
async def producer(servers: Servers) -> AsyncIterator[AIOKafkaProducer]:
    prod = AIOKafkaProducer(bootstrap_servers=servers.kafka_bootstrap, acks="all", enable_idempotence=True)
    await prod.start()
    try:
        yield prod
    finally:
        await prod.stop()


async def read_topic(bootstrap: str, topic: str, key_prefix: str, timeout_ms: int = 3000) -> list[Any]:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest")
    await consumer.start()
    try:
        out = []
        while True:
            batch = await consumer.getmany(timeout_ms=timeout_ms)
            if not batch:
                return out
            for records in batch.values():
                out.extend(r for r in records if r.key and r.key.decode().startswith(key_prefix))
    finally:
        await consumer.stop()


async def test_relay_killed_between_publish_and_mark_duplicates_but_the_effect_happens_once(
    probe: Probe, servers: Servers, unique: str
) -> None:
    oid = f"{unique}-crash"
    ev = order_event(oid)
    # A store whose relay never runs, so only the relays below publish.
    idle = OutboxRelay([], lambda e: publish_entry(probe.rt.broker, e))
    store = MongoStore(probe.rt.db, probe.rt.events, idle).collection("crashy", events=True)
    await store.insert({"_id": oid, "state": "placed"}, events=[ev])
    coll = store.raw

    async def publish_then_die(entry: dict[str, Any]) -> None:
        await publish_entry(probe.rt.broker, entry)
        raise RuntimeError("process killed after publish, before marking the event sent")

    killed = OutboxRelay([coll], publish_then_die)
    with pytest.raises(RuntimeError):
        await killed.drain_once()
    assert len((await coll.find_one({"_id": oid}))["outbox"]) == 1  # still pending: nothing lost

    restarted = OutboxRelay([coll], lambda e: publish_entry(probe.rt.broker, e))
    assert await restarted.drain_once() == 0  # the killed relay's lease has not run out yet: not ours
    # The killed process renews nothing: its lease runs out (here at once, instead of lease_seconds later).
    await coll.database[LEASES].update_one({"_id": killed.owner}, {"$set": {"until": datetime.now(UTC)}})
    assert await restarted.drain_once() == 1
    assert (await coll.find_one({"_id": oid}))["outbox"] == []

    await until(lambda: _ge(probe.count(oid), 1))
    copies = await read_topic(servers.kafka_bootstrap, topics.REGISTRATION, oid)
    assert [json.loads(r.value)["id"] for r in copies] == [ev.id, ev.id]  # delivered twice…
    await asyncio.sleep(1.0)
    assert await probe.count(oid) == 1  # …applied once


async def test_same_event_delivered_twice_has_one_effect(probe: Probe, producer: AIOKafkaProducer, unique: str) -> None:
    oid = f"{unique}-dup"
    ev = order_event(oid)
    raw = ev.model_dump_json().encode()
    for _ in range(2):
        await producer.send_and_wait(topics.REGISTRATION, raw, key=oid.encode())
    await until(lambda: _ge(probe.count(oid), 1))
    await asyncio.sleep(1.0)
    assert await probe.count(oid) == 1
    assert probe.calls[oid] == 1


async def test_poison_and_invalid_messages_are_dead_lettered_and_the_consumer_keeps_going(
    probe: Probe, producer: AIOKafkaProducer, servers: Servers, unique: str
) -> None:
    bad_json = f"{unique}-garbage"
    await producer.send_and_wait(topics.REGISTRATION, b"\x00\xffnot json at all", key=bad_json.encode())
    invalid = json.loads(order_event(f"{unique}-invalid").model_dump_json())
    del invalid["data"]["amount_vnd"]
    await producer.send_and_wait(topics.REGISTRATION, json.dumps(invalid).encode(), key=f"{unique}-invalid".encode())
    good = f"{unique}-good"
    await producer.send_and_wait(topics.REGISTRATION, order_event(good).model_dump_json().encode(), key=good.encode())

    await until(lambda: _ge(probe.count(good), 1))
    await until(lambda: _ge_async(_dlq_count(servers, unique), 2))
    dlq = await read_topic(servers.kafka_bootstrap, topics.dead_letter(topics.REGISTRATION), unique)
    by_key = {r.key.decode(): dict((k, v.decode()) for k, v in r.headers) for r in dlq}
    assert by_key[bad_json]["x-original-topic"] == topics.REGISTRATION
    assert by_key[bad_json]["x-error-type"] == "not_a_cloudevent"
    assert by_key[f"{unique}-invalid"]["x-error-type"] == "invalid_event"
    assert "amount_vnd" in by_key[f"{unique}-invalid"]["x-error"]
    assert by_key[f"{unique}-invalid"]["x-consumer-group"] == probe.rt.settings.consumer_group
    assert {r.value for r in dlq if r.key.decode() == bad_json} == {b"\x00\xffnot json at all"}  # original bytes kept


async def test_technical_faults_are_retried_then_dead_lettered(
    probe: Probe, producer: AIOKafkaProducer, servers: Servers, unique: str
) -> None:
    once_id, always_id = f"{unique}-failonce", f"{unique}-failalways"
    for oid in (once_id, always_id):
        await producer.send_and_wait(topics.REGISTRATION, order_event(oid).model_dump_json().encode(), key=oid.encode())
    await until(lambda: _ge(probe.count(once_id), 1))
    await until(lambda: _ge_async(_dlq_count(servers, always_id), 1))
    assert probe.calls[once_id] == 2 and await probe.count(once_id) == 1
    assert probe.calls[always_id] == 3 and await probe.count(always_id) == 0
    [rec] = await read_topic(servers.kafka_bootstrap, topics.dead_letter(topics.REGISTRATION), always_id)
    headers = {k: v.decode() for k, v in rec.headers}
    assert headers["x-attempts"] == "3" and headers["x-error-type"] == "RuntimeError"


async def test_caused_by_applies_each_event_once_even_when_two_events_race_to_create(probe: Probe, unique: str) -> None:
    coll = probe.rt.store.collection(f"race{unique}")
    await coll.ensure_index([("order_id", 1)], unique=True)
    key = {"order_id": unique}

    async def apply(eid: str, field: str) -> bool:
        return await coll.update(key, {"$set": {field: True}}, caused_by=eid, upsert_with={"_id": f"{eid}-doc"})

    results = await asyncio.gather(apply("e1", "a"), apply("e2", "b"), apply("e1", "a"))
    doc = await coll.raw.find_one(key)
    assert doc["a"] is True and doc["b"] is True
    assert sorted(doc["applied_events"]) == ["e1", "e2"]
    assert results.count(True) == 2


async def _ge(value: Awaitable[int], n: int) -> bool:
    return await value >= n


async def _ge_async(value: Awaitable[int], n: int) -> bool:
    return await value >= n


async def _dlq_count(servers: Servers, prefix: str) -> int:
    return len(await read_topic(servers.kafka_bootstrap, topics.dead_letter(topics.REGISTRATION), prefix, 1000))


async def test_inbox_housekeeping_forgets_only_old_entries(probe: Probe, unique: str) -> None:
    from datetime import UTC, datetime, timedelta

    def now() -> datetime:
        return datetime.now(UTC)

    await probe.rt.inbox.remember(f"{unique}-new", "t")
    await probe.rt.db["processed_events"].insert_one(
        {"_id": f"{probe.rt.settings.consumer_group}:{unique}-old", "type": "t", "at": now() - timedelta(days=90)}
    )
    assert await probe.rt.inbox.forget_older_than(now() - timedelta(days=30)) >= 1
    assert await probe.rt.inbox.seen(f"{unique}-new")
    assert not await probe.rt.inbox.seen(f"{unique}-old")


async def test_offsets_are_committed_in_batches_only_past_handled_messages(
    probe: Probe, producer: AIOKafkaProducer, servers: Servers, unique: str
) -> None:
    from aiokafka import TopicPartition
    from aiokafka.admin import AIOKafkaAdminClient

    slow = f"{unique}-slowcommit"
    gate = asyncio.Event()
    real = probe.handle

    async def held(event: CloudEvent[OrderPlaced]) -> None:
        if event.data.order_id == slow:
            await gate.wait()  # the handler is still working on this message
        await real(event)

    probe.rt.consumer._handlers[OrderPlaced.event_type] = held  # type: ignore[assignment]
    meta = await producer.send_and_wait(
        topics.REGISTRATION, order_event(slow).model_dump_json().encode(), key=slow.encode()
    )
    admin = AIOKafkaAdminClient(bootstrap_servers=servers.kafka_bootstrap)
    await admin.start()
    tp = TopicPartition(topics.REGISTRATION, meta.partition)

    async def committed() -> int:
        offsets = await admin.list_consumer_group_offsets(probe.rt.settings.consumer_group)
        return offsets[tp].offset if tp in offsets else -1

    try:
        await asyncio.sleep(1.0)  # several commit intervals pass while the message is being handled
        assert await committed() <= meta.offset  # never past the message in hand
        gate.set()
        await until(lambda: _ge(probe.count(slow), 1))
        await until(lambda: _ge_async(committed(), meta.offset + 1), timeout=10)  # then, in the next batch
    finally:
        gate.set()
        await admin.close()
