"""The JSON Schemas and the AsyncAPI document in the repository must match what the code renders."""

from __future__ import annotations

import json

import contract_docs
from kyso_contracts import ALL_EVENTS, schemas

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
