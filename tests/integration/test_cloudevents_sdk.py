"""Outside subscribers read every kyso event with the official CloudEvents Python SDK.

Each event type goes the real way — a store write, the outbox relay, the Kafka producer — and the
raw Kafka record is handed to the SDK's ``from_kafka``, which picks the content mode by itself (any
``ce_`` header means binary). Every event must come back as a structured-mode CloudEvent equal to
what was written, and pass kyso's *strict* (writer's) check: the producers emit nothing the version does
not declare. (What the SDK writes, kyso's readers read: tests/unit/test_readers_sdk.py.)
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer
from cloudevents.core.bindings.kafka import KafkaMessage, from_kafka
from cloudevents.core.formats.json import JSONFormat

from kyso_contracts import ALL_EVENTS, CONTENT_TYPE, Payload, parse_event, topics
from kyso_kit.runtime import ServiceRuntime
from kyso_kit.settings import ServiceSettings

from ..conftest import Servers
from ..unit.test_readers_events import payload_of


async def test_every_event_type_reads_with_the_official_sdk(servers: Servers, unique: str) -> None:
    settings = ServiceSettings(  # type: ignore[call-arg]
        service_name=f"sdk{unique}",
        KAFKA_BOOTSTRAP_SERVERS=servers.kafka_bootstrap,
        MONGODB_URL=servers.mongodb_url,
        OUTBOX_POLL_SECONDS=0.1,
    )
    rt = ServiceRuntime(settings, publishes=ALL_EVENTS)
    written = {}
    await rt.start()
    try:
        coll = rt.store.collection("sdk_events", events=True)
        for model in ALL_EVENTS:
            event = rt.events(payload_of(model, unique), causation_id=f"cause-{unique}")
            await coll.insert({"_id": event.id}, events=[event])
            written[event.id] = event
        records = await read_all(servers.kafka_bootstrap, set(written), timeout=30.0)
    finally:
        await rt.stop()

    assert set(records) == set(written)
    fmt = JSONFormat()
    for event_id, record in records.items():
        headers = {k: v for k, v in record.headers}
        assert not any(k.lower().startswith("ce_") for k in headers)  # structured, unambiguously
        assert headers["content-type"].decode() == CONTENT_TYPE
        read = from_kafka(KafkaMessage(headers=headers, key=record.key, value=record.value), fmt)
        ours = written[event_id]
        assert read.get_id() == ours.id and read.get_type() == ours.type and read.get_source() == ours.source
        assert read.get_subject() == ours.subject and record.key.decode() == ours.subject
        assert read.get_dataschema() == ours.dataschema
        assert read.get_extension("correlationid") == ours.correlationid
        assert read.get_extension("causationid") == f"cause-{unique}"
        assert read.get_data() == json.loads(ours.data.model_dump_json())
        assert parse_event(record.value, strict=True) == ours  # writers strict: nothing undeclared went out
    assert {r.topic for r in records.values()} <= {topics.REGISTRATION, topics.PAYMENT, topics.SIGNING, topics.OTP}


async def read_all(bootstrap: str, ids: set[str], timeout: float) -> dict[str, Any]:
    wanted = [topics.REGISTRATION, topics.PAYMENT, topics.SIGNING, topics.OTP]
    consumer = AIOKafkaConsumer(*wanted, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest")
    await consumer.start()
    found: dict[str, Any] = {}
    deadline = asyncio.get_running_loop().time() + timeout
    try:
        while set(found) != ids and asyncio.get_running_loop().time() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for recs in batch.values():
                for r in recs:
                    match = re.search(rb'"id":"([^"]+)"', r.value or b"")
                    if match and match.group(1).decode() in ids:
                        found[match.group(1).decode()] = r
    finally:
        await consumer.stop()
    return found


@pytest.mark.parametrize("model", ALL_EVENTS, ids=lambda m: m.__name__)
def test_sample_payloads_are_valid(model: type[Payload]) -> None:
    assert payload_of(model, "u1").aggregate_id()
