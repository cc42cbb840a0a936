"""The example VNeID subscriber on a real Kafka broker: it reads an event of the next kyso release, and a
record it cannot read is parked — in its SQLite, before its committed offset passes the record — so after
a restart the record is in the ``parked`` table, never silently behind the committed offset."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import TopicPartition
from vneid_status_subscriber import StatusBook, follow

from kyso_contracts import OrderPlaced, topics
from kyso_kit.broker import ensure_topics

from ..conftest import Servers
from ..unit.test_readers_events import future_event


async def test_the_subscriber_parks_an_unreadable_record_and_reads_the_next_release(
    servers: Servers, unique: str, tmp_path: Path
) -> None:
    await ensure_topics(servers.kafka_bootstrap, [topics.REGISTRATION, topics.SIGNING])
    placed, future = future_event(OrderPlaced, unique)
    producer = AIOKafkaProducer(bootstrap_servers=servers.kafka_bootstrap, acks="all")
    await producer.start()
    try:
        bad = await producer.send_and_wait(topics.SIGNING, f"not an event {unique}".encode(), key=unique.encode())
        await producer.send_and_wait(topics.REGISTRATION, json.dumps(future).encode(), key=placed.subject.encode())
    finally:
        await producer.stop()

    path, group = str(tmp_path / "vneid.sqlite"), f"vneid-readers-{unique}"
    book, stop = StatusBook(path), asyncio.Event()
    follower = asyncio.create_task(follow(book, servers.kafka_bootstrap, group, stop))
    order_id = placed.data.order_id  # type: ignore[attr-defined]

    def done() -> bool:
        parked = {(p.topic, p.partition, p.offset) for p in book.parked()}
        stored = book.db.execute("SELECT 1 FROM orders WHERE order_id = ?", (order_id,)).fetchone()
        return (bad.topic, bad.partition, bad.offset) in parked and stored is not None

    try:
        async with asyncio.timeout(60):
            while not done():
                assert not follower.done(), follower.exception()
                await asyncio.sleep(0.1)
    finally:
        stop.set()
        await follower

    check = AIOKafkaConsumer(bootstrap_servers=servers.kafka_bootstrap, group_id=group, enable_auto_commit=False)
    await check.start()
    try:
        committed = await check.committed(TopicPartition(bad.topic, bad.partition))
    finally:
        await check.stop()
    assert committed is not None and committed > bad.offset  # the offset moved past it…

    restarted = StatusBook(path)  # …because after a restart it is here, whole, with why
    [row] = [
        p for p in restarted.parked() if (p.topic, p.partition, p.offset) == (bad.topic, bad.partition, bad.offset)
    ]
    assert "not a valid kyso event" in row.reason
    (value,) = restarted.db.execute(
        'SELECT value FROM parked WHERE topic = ? AND partition = ? AND "offset" = ?',
        (bad.topic, bad.partition, bad.offset),
    ).fetchone()
    assert value == f"not an event {unique}".encode()
    (status,) = restarted.db.execute("SELECT status FROM orders WHERE order_id = ?", (order_id,)).fetchone()
    assert status == "awaiting_payment"  # the next release's OrderPlaced was read, its extras ignored
