from __future__ import annotations

import json
from datetime import UTC, date, datetime

import pytest
from pydantic import ValidationError

from kyso_contracts import (
    ALL_EVENTS,
    BY_TYPE,
    CloudEvent,
    OrderPlaced,
    PaymentConfirmed,
    SubscriberIdentity,
    UnknownEventType,
    parse_event,
    topics,
    wrap,
)


def order(**over: object) -> OrderPlaced:
    base: dict[str, object] = dict(
        order_id="o1",
        account_id="a1",
        registration_id="r1",
        subscriber=SubscriberIdentity(
            citizen_id="001099012345", full_name="Nguyễn Văn An", date_of_birth=date(1990, 1, 2)
        ),
        email="an@example.vn",
        package_code="PERSONAL_1Y",
        validity_years=1,
        amount_vnd=800_000,
        placed_at=datetime.now(UTC),
    )
    base.update(over)
    return OrderPlaced(**base)  # type: ignore[arg-type]


def test_envelope_has_every_cloudevents_attribute_and_round_trips() -> None:
    ev = wrap(order(), source="/kyso/registration", correlation_id="c1", causation_id="x")
    doc = json.loads(ev.model_dump_json())
    for attr in (
        "specversion",
        "id",
        "source",
        "type",
        "time",
        "subject",
        "datacontenttype",
        "dataschema",
        "correlationid",
        "causationid",
        "data",
    ):
        assert attr in doc
    assert doc["specversion"] == "1.0"
    assert doc["type"] == "vn.kyso.registration.order_placed.v1"
    assert doc["subject"] == "o1" == ev.key.decode()
    assert doc["dataschema"].endswith("vn.kyso.registration.order_placed.v1.json")
    back = parse_event(ev.model_dump_json())
    assert back == ev and isinstance(back.data, OrderPlaced)


def test_every_event_is_versioned_has_a_topic_and_a_key_field() -> None:
    assert len(BY_TYPE) == len(ALL_EVENTS)
    for e in ALL_EVENTS:
        assert e.event_type.startswith("vn.kyso.") and e.event_type.rsplit(".", 1)[1].startswith("v")
        assert e.topic in topics.ALL
        assert e.key_field in e.model_fields


@pytest.mark.parametrize(
    "over",
    [
        {"validity_years": 4},
        {"validity_years": 0},
        {"amount_vnd": 0},
        {"amount_vnd": 1.5},
        {"placed_at": datetime(2025, 1, 1)},
        {"order_id": ""},
        {"email": "nope"},
    ],
)
def test_payload_rules_reject_bad_values(over: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        order(**over)


def test_decree_23_three_years_is_the_maximum() -> None:
    assert order(validity_years=3).validity_years == 3


def test_parse_rejects_unknown_types_garbage_and_missing_fields() -> None:
    with pytest.raises(UnknownEventType):
        parse_event(b'{"type": "vn.kyso.nope.v1"}')
    with pytest.raises(ValueError):
        parse_event(b"not json")
    with pytest.raises(ValueError):
        parse_event(b"[1,2]")
    good = json.loads(wrap(order(), source="/s", correlation_id="c").model_dump_json())
    del good["data"]["amount_vnd"]
    with pytest.raises(ValidationError):
        parse_event(good)
    good2 = json.loads(wrap(order(), source="/s", correlation_id="c").model_dump_json())
    good2["extra"] = 1  # an extension attribute this version does not define: a reader ignores it…
    assert parse_event(good2).id == good2["id"]
    with pytest.raises(ValidationError):  # …the writer's check refuses it
        parse_event(good2, strict=True)


def test_payload_of_the_wrong_type_is_rejected() -> None:
    ev = json.loads(wrap(order(), source="/s", correlation_id="c").model_dump_json())
    ev["type"] = PaymentConfirmed.event_type
    with pytest.raises(ValidationError):
        parse_event(ev)


def test_naive_time_is_rejected() -> None:
    with pytest.raises(ValidationError):
        CloudEvent[OrderPlaced](
            id="1",
            source="/s",
            type=OrderPlaced.event_type,
            time=datetime(2025, 1, 1),
            subject="o1",
            dataschema="x",
            correlationid="c",
            data=order(),
        )


def test_dead_letter_topic_names() -> None:
    assert topics.dead_letter(topics.PAYMENT) == "kyso.payment.events.v1.dlq"
