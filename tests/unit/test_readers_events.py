"""Writers strict, readers tolerant: every kyso consumer reads an event of every type as the *next* kyso
release may write it — an optional payload field added (at every level of ``data``) and a new CloudEvents
extension attribute (a top-level attribute in structured mode) — while kyso's own writers still refuse
anything the version does not declare.

``future_event`` builds such an event from a valid sample of each payload; the samples are also what
``tests/integration/test_cloudevents_sdk.py`` writes through the real relay.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest
from pydantic import ValidationError

from kyso_contracts import ALL_EVENTS, BY_TYPE, CloudEvent, OrderPlaced, Payload, PaymentConfirmed, parse_event, wrap
from kyso_kit.broker import EventConsumer
from kyso_kit.metrics import Metrics
from kyso_kit.settings import ServiceSettings

_BY_PATTERN = {
    r"^[A-Za-z0-9_-]+$": "x1",
    r"^\d{12}$": "001099012345",
    r"^\+84[1-9]\d{8}$": "+84912345678",
    r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$": "an@example.vn",
    r"^[0-9a-f]{64}$": "a" * 64,
    r"^[0-9a-f]{1,40}$": "1f2e3d",
    r"^[0-9]{10}(-[0-9]{3})?$": "0100109106",  # a tax code: its check digit is checked too
}

NEW_FIELD = "added_in_a_later_release"
NEW_EXTENSION = "kysonewext"  # CloudEvents extension names: lower-case a-z and 0-9 only (spec §3.1.1)


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
    """A valid payload of ``model`` with every optional field filled (so nested objects exist)."""
    schema = model.model_json_schema()
    return model.model_validate(sample(schema, schema.get("$defs", {}), model.__name__, unique))


def _grow(value: Any) -> Any:
    """Add NEW_FIELD to every JSON object in ``value``, at every depth (objects inside lists too)."""
    if isinstance(value, dict):
        return {**{k: _grow(v) for k, v in value.items()}, NEW_FIELD: {"nested": [1, "two"]}}
    if isinstance(value, list):
        return [_grow(v) for v in value]
    return value


def future_event(model: type[Payload], unique: str = "u1") -> tuple[CloudEvent[Any], dict[str, Any]]:
    """An event of ``model`` as kyso writes it today, and the structured-mode JSON object of the same event
    as a later kyso release may write it: a new optional field in every object of ``data`` and a new
    extension attribute at the top level of the envelope (where structured mode puts extensions)."""
    today = wrap(payload_of(model, unique), source="/kyso/next", correlation_id=f"c-{unique}")
    doc = copy.deepcopy(today.to_json_dict())
    doc["data"] = _grow(doc["data"])
    doc[NEW_EXTENSION] = "a value this version does not know"
    return today, doc


# --------------------------------------------------------------------------- the contracts package


@pytest.mark.parametrize("model", ALL_EVENTS, ids=lambda m: m.__name__)
def test_parse_event_reads_every_type_with_an_added_field_and_an_added_extension(model: type[Payload]) -> None:
    today, doc = future_event(model)
    assert NEW_FIELD in json.dumps(doc["data"]) and NEW_EXTENSION in doc
    read = parse_event(json.dumps(doc).encode())
    assert read == today  # every declared field read, the unknown ones ignored
    assert isinstance(read.data, model)
    with pytest.raises(ValidationError):  # the writer's check refuses both
        parse_event(doc, strict=True)
    assert parse_event(today.to_json_dict(), strict=True) == today


def test_writers_stay_strict() -> None:
    """kyso's producers cannot emit a field (or an envelope attribute) the version does not declare."""
    _, doc = future_event(OrderPlaced)
    today, _ = future_event(OrderPlaced)
    with pytest.raises(ValidationError):
        OrderPlaced(**today.data.model_dump(), **{NEW_FIELD: 1})
    with pytest.raises(ValidationError):
        OrderPlaced.model_validate(doc["data"])
    with pytest.raises(ValidationError):
        type(today)(**today.model_dump(), **{NEW_EXTENSION: "x"})
    with pytest.raises(ValidationError):
        type(today).model_validate(doc)


def test_a_tolerant_reader_still_checks_every_declared_field() -> None:
    _, doc = future_event(OrderPlaced)
    doc["data"]["amount_vnd"] = 0
    with pytest.raises(ValidationError):
        parse_event(doc)
    _, doc = future_event(OrderPlaced)
    del doc["data"]["subscriber"]["citizen_id"]
    with pytest.raises(ValidationError):
        parse_event(doc)


# --------------------------------------------------------------------------- kyso's own consumers


class FakeInbox:
    def __init__(self) -> None:
        self.remembered: list[str] = []

    async def seen(self, event_id: str) -> bool:
        return event_id in self.remembered

    async def remember(self, event_id: str, event_type: str) -> None:
        self.remembered.append(event_id)


class FakeBroker:
    """Records what the consumer dead-letters (a real one would publish to ``<topic>.dlq``)."""

    def __init__(self) -> None:
        self.published: list[tuple[bytes, str]] = []
        self.headers: list[dict[str, str]] = []

    async def publish(self, body: bytes, topic: str, *, headers: dict[str, str] | None = None, **_: Any) -> None:
        self.published.append((body, topic))
        self.headers.append(headers or {})


def message(event: dict[str, Any], model: type[Payload], offset: int = 7) -> Any:
    record = SimpleNamespace(topic=model.topic, partition=0, offset=offset, key=event["subject"].encode())
    return SimpleNamespace(raw_message=record, body=json.dumps(event).encode())


@pytest.mark.parametrize("model", ALL_EVENTS, ids=lambda m: m.__name__)
async def test_the_kit_consumer_handles_every_type_from_the_next_release(model: type[Payload]) -> None:
    settings = ServiceSettings(service_name="readers")  # type: ignore[call-arg]
    broker, inbox = FakeBroker(), FakeInbox()
    consumer = EventConsumer(settings, broker, inbox, Metrics("readers"))  # type: ignore[arg-type]
    got: list[CloudEvent[Any]] = []

    @consumer.on(model)
    async def handle(event: CloudEvent[Any]) -> None:
        got.append(event)

    today, doc = future_event(model)
    await consumer.handle(message(doc, model))
    assert broker.published == [] and consumer.dead_lettered == 0
    assert got == [today] and inbox.remembered == [today.id]


async def test_the_kit_consumer_dead_letters_another_version_of_a_type_it_handles() -> None:
    """A new major version is a breaking change the consumer cannot read: it goes to the dead-letter topic
    (to be replayed once the consumer is upgraded) instead of being passed over like a type of no concern."""
    settings = ServiceSettings(service_name="readersv2")  # type: ignore[call-arg]
    broker = FakeBroker()
    consumer = EventConsumer(settings, broker, FakeInbox(), Metrics("readersv2"))  # type: ignore[arg-type]

    @consumer.on(PaymentConfirmed)
    async def handle(event: CloudEvent[Any]) -> None:
        raise AssertionError("a v2 event is not a v1 event")

    _, v2 = future_event(PaymentConfirmed)
    v2["type"] = "vn.kyso.payment.confirmed.v2"
    _, unrelated = future_event(PaymentConfirmed)
    unrelated["type"] = "vn.kyso.payment.something_new.v1"
    await consumer.handle(message(unrelated, PaymentConfirmed, offset=8))
    assert broker.published == []  # none of this consumer's business
    await consumer.handle(message(v2, PaymentConfirmed, offset=9))
    assert broker.published == [(json.dumps(v2).encode(), PaymentConfirmed.topic + ".dlq")]
    [headers] = broker.headers
    assert headers["x-error-type"] == "unknown_version" and headers["x-original-offset"] == "9"


def _service_consumers() -> list[tuple[str, EventConsumer]]:
    """The four services' consumers exactly as their composition roots wire them (no server started)."""
    import contract_docs
    from kyso_otp.bootstrap import build as build_otp
    from kyso_otp.settings import OtpSettings
    from kyso_payment.bootstrap import build as build_payment
    from kyso_payment.settings import PaymentSettings
    from kyso_registration.bootstrap import build as build_registration
    from kyso_registration.settings import RegistrationSettings
    from kyso_signing.bootstrap import build as build_signing
    from kyso_signing.settings import SigningSettings

    env: dict[str, Any] = contract_docs._DOC_ENV
    builds: list[tuple[str, Callable[[], Any]]] = [
        ("registration", lambda: build_registration(RegistrationSettings(**env))),
        ("payment", lambda: build_payment(PaymentSettings(**env))),
        ("signing", lambda: build_signing(SigningSettings(**env))),
        ("otp", lambda: build_otp(OtpSettings(**env))),
    ]
    return [(name, make()[0].consumer) for name, make in builds]


async def test_every_service_consumer_reads_each_type_it_handles_from_the_next_release() -> None:
    """Each service's real routing (its registered types and ``wants`` filters) takes the future event of
    every type it consumes to its handler — never to the dead-letter topic. The handlers themselves are
    replaced by recorders: what they do with an event is the service tests' business, reading it is ours."""
    covered: set[str] = set()
    for service, consumer in _service_consumers():
        broker, inbox = FakeBroker(), FakeInbox()
        consumer._broker, consumer._inbox = broker, inbox  # type: ignore[assignment]
        got: list[str] = []

        async def record(event: CloudEvent[Any], got: list[str] = got) -> None:
            got.append(event.id)

        types = sorted(consumer._handlers)
        assert types, service
        for event_type in types:
            consumer._handlers[event_type] = record
            model = BY_TYPE[event_type]
            today, doc = future_event(model, unique=service)
            wants = consumer._wants.get(event_type)
            await consumer.handle(message(doc, model))
            assert broker.published == [] and consumer.dead_lettered == 0, (service, event_type)
            if wants is None or wants(today.data):
                assert got[-1:] == [today.id], (service, event_type)
            covered.add(event_type)
    assert covered, "no service consumes anything?"
