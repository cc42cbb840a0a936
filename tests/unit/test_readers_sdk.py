"""The next release's events written by an independent tool: the official CloudEvents Python SDK.

Where an extension attribute goes is the SDK's decision, not ours — in Kafka structured mode it writes it
as a top-level member of the JSON event (CloudEvents JSON format §3.1). kyso's parser, kyso's service
consumer and the example VNeID subscriber must all read what the SDK writes, for every event type, with
an added extension attribute and an added payload field.
"""

from __future__ import annotations

import json
from datetime import datetime
from types import SimpleNamespace
from typing import Any

import pytest
from cloudevents.core.bindings.kafka import from_kafka, to_binary, to_structured
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent as SdkEvent
from vneid_status_subscriber import StatusBook

from kyso_contracts import ALL_EVENTS, CloudEvent, Payload, parse_event
from kyso_kit.broker import EventConsumer
from kyso_kit.metrics import Metrics
from kyso_kit.settings import ServiceSettings

from .test_readers_events import NEW_EXTENSION, NEW_FIELD, FakeBroker, FakeInbox, future_event


def sdk_event(model: type[Payload]) -> tuple[CloudEvent[Any], SdkEvent]:
    """Today's kyso event of ``model``, and the same event built with the SDK as a later kyso may write it."""
    today, future = future_event(model)
    attributes = {k: v for k, v in future.items() if k != "data"}
    attributes["time"] = datetime.fromisoformat(attributes["time"])
    return today, SdkEvent(attributes, future["data"])


@pytest.mark.parametrize("model", ALL_EVENTS, ids=lambda m: m.__name__)
async def test_every_reader_takes_what_the_sdk_writes_with_an_extension_and_a_field(model: type[Payload]) -> None:
    today, event = sdk_event(model)
    message = to_structured(event, JSONFormat(), key_mapper=lambda e: e.get_subject())
    written = json.loads(message.value)
    assert written[NEW_EXTENSION] and NEW_FIELD in written["data"]  # top level, as the SDK puts it
    assert from_kafka(message, JSONFormat()).get_extension(NEW_EXTENSION) == written[NEW_EXTENSION]

    assert parse_event(message.value) == today

    consumer = EventConsumer(
        ServiceSettings(service_name="sdkreaders"),  # type: ignore[call-arg]
        broker := FakeBroker(),  # type: ignore[arg-type]
        FakeInbox(),  # type: ignore[arg-type]
        Metrics("sdkreaders"),
    )
    got: list[CloudEvent[Any]] = []

    @consumer.on(model)
    async def handle(e: CloudEvent[Any]) -> None:
        got.append(e)

    record = SimpleNamespace(topic=model.topic, partition=0, offset=1, key=message.key)
    await consumer.handle(SimpleNamespace(raw_message=record, body=message.value))  # type: ignore[arg-type]
    assert got == [today] and broker.published == []

    book = StatusBook()
    assert book.receive(model.topic, 0, 1, message.value, message.key) == "stored" and book.parked() == []


async def test_a_binary_mode_record_is_never_dropped_silently() -> None:
    """kyso writes structured mode only. A binary-mode record (attributes in ``ce_`` headers, the value is
    ``data`` alone) is not a kyso event to these readers: kyso's consumer dead-letters it and the example
    subscriber parks it — both loudly, neither passes over it."""
    [model] = [m for m in ALL_EVENTS if m.__name__ == "CertRevoked"]
    _, event = sdk_event(model)
    message = to_binary(event, JSONFormat())
    assert any(k.startswith("ce_") for k in message.headers) and b"specversion" not in message.value

    consumer = EventConsumer(
        ServiceSettings(service_name="sdkbinary"),  # type: ignore[call-arg]
        broker := FakeBroker(),  # type: ignore[arg-type]
        FakeInbox(),  # type: ignore[arg-type]
        Metrics("sdkbinary"),
    )

    @consumer.on(model)
    async def handle(e: CloudEvent[Any]) -> None:
        raise AssertionError("not a structured-mode event")

    record = SimpleNamespace(topic=model.topic, partition=0, offset=2, key=message.key)
    await consumer.handle(SimpleNamespace(raw_message=record, body=message.value))  # type: ignore[arg-type]
    assert broker.published == [(message.value, model.topic + ".dlq")]

    book = StatusBook()
    assert book.receive(model.topic, 0, 2, message.value, message.key) == "parked"
    assert [p.offset for p in book.parked()] == [2]
