"""The JSON Schemas and the AsyncAPI document in the repository must match what the code renders, and
they are the reader's contract: tolerant of what a later release adds, explicit that events may repeat."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from jsonschema import Draft202012Validator

import contract_docs
from kyso_contracts import ALL_EVENTS, Payload, schemas
from kyso_contracts.envelope import DELIVERED_MORE_THAN_ONCE, READERS_IGNORE_UNKNOWN

from .test_readers_events import future_event

REGENERATE = "regenerate with: uv run python deploy/contract_docs.py"


def test_json_schemas_match_the_models() -> None:
    rendered = schemas.event_schemas()
    on_disk = {str(p.relative_to(contract_docs.SCHEMA_DIR)) for p in contract_docs.SCHEMA_DIR.rglob("*.json")}
    assert on_disk == set(rendered), REGENERATE
    for name, schema in rendered.items():
        assert (contract_docs.SCHEMA_DIR / name).read_text(encoding="utf-8") == schemas.render(schema), (
            f"{name} drifted; {REGENERATE}"
        )
    assert len(rendered) == 2 * len(ALL_EVENTS)


def test_every_dataschema_uri_names_a_published_file_with_that_id() -> None:
    from kyso_contracts.envelope import SCHEMA_BASE

    for e in ALL_EVENTS:
        for uri in (e.dataschema(), e.envelope_schema()):
            path = contract_docs.SCHEMA_DIR / uri.removeprefix(SCHEMA_BASE + "/")
            assert json.loads(path.read_text(encoding="utf-8"))["$id"] == uri
        data = json.loads((contract_docs.SCHEMA_DIR / "data" / f"{e.event_type}.json").read_text())
        assert set(data["required"]) <= set(e.model_fields)


def test_asyncapi_document_matches_the_services() -> None:
    assert contract_docs.ASYNCAPI_PATH.read_text(encoding="utf-8") == contract_docs.render_asyncapi(), REGENERATE


def test_asyncapi_names_every_topic_publisher_and_consumer() -> None:
    doc = json.loads(contract_docs.ASYNCAPI_PATH.read_text(encoding="utf-8"))
    assert doc["asyncapi"].startswith("3.")
    channels = set(doc["channels"])
    for topic in (
        "kyso.registration.events.v1",
        "kyso.payment.events.v1",
        "kyso.signing.events.v1",
        "kyso.otp.events.v1",
    ):
        assert f"{topic}:publish" in channels
    assert "kyso.registration.events.v1:payment" in channels  # payment consumes OrderPlaced
    assert "kyso.payment.events.v1:signing" in channels  # signing consumes PaymentConfirmed
    text = json.dumps(doc)
    for e in ALL_EVENTS:
        assert e.__name__ in text


def _objects(node: Any) -> Iterator[dict[str, Any]]:
    """Every JSON Schema object definition (a schema with ``properties``) anywhere in ``node``."""
    if isinstance(node, dict):
        if isinstance(node.get("properties"), dict) and node.get("type", "object") == "object":
            yield node
        for v in node.values():
            yield from _objects(v)
    elif isinstance(node, list):
        for v in node:
            yield from _objects(v)


def test_published_schemas_tell_readers_to_ignore_what_they_do_not_know() -> None:
    """The reader's contract: every object, at every level, allows additional properties (payload fields
    and extension attributes a later release adds within a version), and says why."""
    count = 0
    for path in sorted(contract_docs.SCHEMA_DIR.rglob("*.json")):
        schema = json.loads(path.read_text(encoding="utf-8"))
        assert READERS_IGNORE_UNKNOWN in schema["$comment"], path
        for obj in _objects(schema):
            assert obj.get("additionalProperties") is True, (path, obj.get("title"))
            count += 1
    assert count > 2 * len(ALL_EVENTS)  # nested objects too
    for path in contract_docs.SCHEMA_DIR.glob("envelope/*.json"):
        assert DELIVERED_MORE_THAN_ONCE in json.loads(path.read_text(encoding="utf-8"))["$comment"]
    doc = json.loads(contract_docs.ASYNCAPI_PATH.read_text(encoding="utf-8"))
    assert READERS_IGNORE_UNKNOWN in doc["info"]["description"]
    assert DELIVERED_MORE_THAN_ONCE in doc["info"]["description"]
    asyncapi_objects = list(_objects(doc["components"]))
    assert asyncapi_objects and all(o.get("additionalProperties") is True for o in asyncapi_objects)


@pytest.mark.parametrize("model", ALL_EVENTS, ids=lambda m: m.__name__)
def test_an_independent_validator_accepts_the_next_release_under_the_published_schema(model: type[Payload]) -> None:
    """jsonschema (not pydantic) checks, against the files on disk, that today's event and the next
    release's (an added field in every object, an added extension attribute) both conform, and that a
    missing required field does not."""
    today, future = future_event(model)
    for kind, doc in (("envelope", future), ("data", future["data"])):
        schema = json.loads((contract_docs.SCHEMA_DIR / kind / f"{model.event_type}.json").read_text("utf-8"))
        validator = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
        validator.validate(doc)
        validator.validate(today.to_json_dict() if kind == "envelope" else today.to_json_dict()["data"])
        broken = {k: v for k, v in doc.items() if k != schema["required"][0]}
        assert not validator.is_valid(broken)
