"""Scale-out of the kit's consumer against the real broker: instances split the partitions between them,
each partition in order; a graceful stop finishes its in-flight handler and commits before it leaves;
a static member that comes back takes its partitions back without moving anyone else's."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from kyso_contracts import CloudEvent, OrderPlaced, topics
from kyso_kit.runtime import ServiceRuntime
from kyso_kit.settings import ServiceSettings

from ..conftest import Servers
from .test_kit_reliability import order_event, until


class Instance:
    """One instance of a probe service (several share a service name, so one consumer group)."""

    def __init__(self, servers: Servers, unique: str, seen: list[tuple[str, int, str]], **env: Any) -> None:
        settings = ServiceSettings(  # type: ignore[call-arg]
            service_name=f"scale{unique}",
            KAFKA_BOOTSTRAP_SERVERS=servers.kafka_bootstrap,
            MONGODB_URL=servers.mongodb_url,
            OUTBOX_POLL_SECONDS=0.1,
            **env,
        )
        self.unique = unique
        self.seen = seen
        self.rt = ServiceRuntime(settings, publishes=[OrderPlaced])
        self.rt.consumer.on(OrderPlaced)(self.handle)
        self.gate: asyncio.Event | None = None
        self.holding = False
        self.name = str(env.get("KAFKA_GROUP_INSTANCE_ID", id(self)))

    async def handle(self, event: CloudEvent[OrderPlaced]) -> None:
        oid = event.data.order_id
        if not oid.startswith(self.unique):
            return
        if self.gate is not None and oid.endswith("-held"):
            self.holding = True
            await self.gate.wait()
        key, sep, seq = oid.rpartition("_s")
        self.seen.append((key, int(seq), self.name) if sep else (oid, 0, self.name))


@pytest.fixture
async def producer(servers: Servers) -> AsyncIterator[AIOKafkaProducer]:
    prod = AIOKafkaProducer(bootstrap_servers=servers.kafka_bootstrap, acks="all", enable_idempotence=True)
    await prod.start()
    try:
        yield prod
    finally:
        await prod.stop()


async def send(producer: AIOKafkaProducer, oid: str, key: str) -> Any:
    return await producer.send_and_wait(
        topics.REGISTRATION, order_event(oid).model_dump_json().encode(), key=key.encode()
    )


async def test_two_instances_split_the_partitions_and_keep_each_key_in_order(
    servers: Servers, producer: AIOKafkaProducer, unique: str
) -> None:
    seen: list[tuple[str, int, str]] = []
    a, b = Instance(servers, unique, seen), Instance(servers, unique, seen)
    await a.rt.start()
    await b.rt.start()
    try:
        total = len(await producer.partitions_for(topics.REGISTRATION))
        # sized from the assignment: together they hold every partition, each about half of them
        await until(lambda: _true(a.rt.consumer.assigned + b.rt.consumer.assigned == total and
                                  min(a.rt.consumer.assigned, b.rt.consumer.assigned) >= total // 2))  # fmt: skip
        keys = [f"{unique}-k{i}" for i in range(24)]
        for seq in range(1, 6):
            await asyncio.gather(*(send(producer, f"{k}_s{seq}", k) for k in keys))
        await until(lambda: _true(len(seen) >= len(keys) * 5), timeout=60)
        await asyncio.sleep(1.0)
        assert len(seen) == len(keys) * 5  # each once
        for k in keys:
            assert [s for key, s, _ in seen if key == k] == [1, 2, 3, 4, 5]  # each key in order
        assert {name for *_, name in seen} == {a.name, b.name}  # both instances handled events
    finally:
        await a.rt.stop()
        await b.rt.stop()


async def test_a_graceful_stop_finishes_the_handler_in_hand_and_commits_it_before_leaving(
    servers: Servers, producer: AIOKafkaProducer, unique: str
) -> None:
    seen: list[tuple[str, int, str]] = []
    a = Instance(servers, unique, seen)
    a.gate = asyncio.Event()
    await a.rt.start()
    admin = AIOKafkaAdminClient(bootstrap_servers=servers.kafka_bootstrap)
    await admin.start()
    try:
        oid = f"{unique}-held"
        meta = await send(producer, oid, oid)
        await until(lambda: _true(a.holding))
        stopping = asyncio.create_task(a.rt.stop())
        await asyncio.sleep(1.0)
        assert not stopping.done()  # it waits for the handler in hand
        a.gate.set()
        await asyncio.wait_for(stopping, timeout=20)
        assert [key for key, *_ in seen] == [oid]
        offsets = await admin.list_consumer_group_offsets(a.rt.settings.consumer_group)
        assert offsets[TopicPartition(topics.REGISTRATION, meta.partition)].offset == meta.offset + 1
    finally:
        a.gate.set()
        await admin.close()


async def crash(inst: Instance) -> None:
    """What the group sees of a SIGKILL: no more heartbeats and no LeaveGroup (aiokafka never sends one for
    a static member; the kit's own leave is skipped), then the process is gone."""
    runner = inst.rt.consumer._runner
    assert runner is not None and runner._fetching is not None and runner._consumer is not None
    runner._fetching.cancel()
    for p in runner.workers.values():
        assert p.task is not None
        p.task.cancel()
    await runner._consumer.stop()
    runner._stopped = asyncio.get_running_loop().create_future()
    runner._stopped.set_result(None)
    await inst.rt.stop()


STATIC = {"KAFKA_SESSION_TIMEOUT_MS": 20000}


async def test_a_static_member_back_from_a_crash_within_the_session_timeout_moves_no_other_partition(
    servers: Servers, producer: AIOKafkaProducer, unique: str
) -> None:
    seen: list[tuple[str, int, str]] = []
    a = Instance(servers, unique, seen, KAFKA_GROUP_INSTANCE_ID="a", **STATIC)
    b = Instance(servers, unique, seen, KAFKA_GROUP_INSTANCE_ID="b", **STATIC)
    await a.rt.start()
    await b.rt.start()
    a2: Instance | None = None
    try:
        await until(lambda: _true(a.rt.consumer.assigned > 0 and b.rt.consumer.assigned > 0))
        await asyncio.sleep(2.0)  # settled
        runner = b.rt.consumer._runner
        assert runner is not None
        held = dict(runner.workers)  # b's partitions and their workers
        await crash(a)
        a2 = Instance(servers, unique, seen, KAFKA_GROUP_INSTANCE_ID="a", **STATIC)
        await a2.rt.start()
        await until(lambda: _true(a2.rt.consumer.assigned > 0))
        await asyncio.sleep(3.0)  # several heartbeats: a rebalance would have revoked b's partitions
        assert runner.workers == held  # the very same workers: b was never asked to give anything up
        oid = f"{unique}-after_s1"
        await send(producer, oid, oid)
        await until(lambda: _true(any(k == f"{unique}-after" for k, *_ in seen)))
    finally:
        for inst in (a2, b):
            if inst is not None:
                await inst.rt.stop()


async def test_a_static_member_stopping_gracefully_hands_its_partitions_over_at_once(
    servers: Servers, producer: AIOKafkaProducer, unique: str
) -> None:
    seen: list[tuple[str, int, str]] = []
    a = Instance(servers, unique, seen, KAFKA_GROUP_INSTANCE_ID="a", **STATIC)
    b = Instance(servers, unique, seen, KAFKA_GROUP_INSTANCE_ID="b", **STATIC)
    await a.rt.start()
    await b.rt.start()
    try:
        total = len(await producer.partitions_for(topics.REGISTRATION))
        await until(lambda: _true(a.rt.consumer.assigned > 0 and b.rt.consumer.assigned > 0))
        await a.rt.stop()
        stopped = asyncio.get_running_loop().time()
        # it left the group (LeaveGroup v3 by its group.instance.id): b holds everything well before the
        # 20 s session timeout would have moved anything
        await until(lambda: _true(b.rt.consumer.assigned == total), timeout=8)
        assert asyncio.get_running_loop().time() - stopped < 8
        oid = f"{unique}-handed_s1"
        await send(producer, oid, oid)
        await until(lambda: _true(any(k == f"{unique}-handed" for k, *_ in seen)), timeout=8)
    finally:
        await b.rt.stop()


async def _true(value: bool) -> bool:
    return value
