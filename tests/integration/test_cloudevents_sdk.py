"""Outside subscribers read every kyso event with the official CloudEvents Python SDK.

Each event type goes the real way — a store write, the outbox relay, the Kafka producer — and the
raw Kafka record is handed to the SDK's ``from_kafka``, which picks the content mode by itself (any
``ce_`` header means binary). Every event must come back as a structured-mode CloudEvent equal to
what was written.
"""

from __future__ import annotations

import asyncio
import json
import re
from datetime import UTC, datetime
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer
from cloudevents.core.bindings.kafka import KafkaMessage, from_kafka
from cloudevents.core.formats.json import JSONFormat

from kyso_contracts import ALL_EVENTS, CONTENT_TYPE, Payload, topics
from kyso_kit.runtime import ServiceRuntime
from kyso_kit.settings import ServiceSettings

from ..conftest import Servers

_BY_PATTERN = {
    r"^[A-Za-z0-9_-]+$": "x1",
    r"^\d{12}$": "001099012345",
    r"^\+84[1-9]\d{8}$": "+84912345678",
    r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$": "an@example.vn",
    r"^[0-9a-f]{64}$": "a" * 64,
    r"^[0-9a-f]{1,40}$": "1f2e3d",
    r"^[0-9]{10}(-[0-9]{3})?$": "0100109106",  # a tax code: its check digit is checked too
}


def sample(schema: dict[str, Any], defs: dict[str, Any], name: str, unique: str) -> Any:
    """A valid value for a JSON Schema property (enough for the shapes our payloads use)."""
    if "$ref" in schema:
        return sample(defs[schema["$ref"].rsplit("/", 1)[-1]], defs, name, unique)
    if "anyOf" in schema:
        return sample(next(s for s in schema["anyOf"] if s.get("type") != "null"), defs, name, unique)
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "object":
        return {k: sample(v, defs, k, unique) for k, v in schema.get("properties", {}).items()}
    if kind == "array":
        return [sample(schema["items"], defs, name, unique) for _ in range(max(1, schema.get("minItems", 1)))]
    if kind == "boolean":
        return True
    if kind == "integer":
        return max(1, schema.get("minimum", 1), schema.get("exclusiveMinimum", 0) + 1)
    if schema.get("format") == "date-time":
        return datetime.now(UTC).isoformat()
    if schema.get("format") == "date":
        return "1990-01-02"
    if name.endswith("_id") and schema.get("pattern") == "^[A-Za-z0-9_-]+$":
        return f"{unique}-{name}"
    if "pattern" in schema:
        return _BY_PATTERN[schema["pattern"]]
    return f"sample {name}"[: schema.get("maxLength", 100)]


def payload_of(model: type[Payload], unique: str) -> Payload:
    schema = model.model_json_schema()
    return model.model_validate(sample(schema, schema.get("$defs", {}), model.__name__, unique))


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
