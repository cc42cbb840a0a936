"""Issue 24, the signing service's OpenAPI document says what the server enforces: for each rule, what the
schema accepts (checked by an independent validator, jsonschema Draft 2020-12 as OpenAPI 3.1 uses) the
server accepts, and what it refuses the server refuses."""

from __future__ import annotations

import base64
import json
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import jsonschema
import pytest
from fastapi.testclient import TestClient

from kyso_kit.clock import FakeClock
from kyso_kit.crypto import SecretBox
from kyso_kit.devkeys import dev_master_key
from kyso_kit.errors import Invalid
from kyso_kit.store import EventFactory, MemoryStore
from kyso_signing.api import subscriber as http_api
from kyso_signing.bootstrap import build
from kyso_signing.credentials import keywrap
from kyso_signing.credentials.views import LifecycleRequest, weak_pins
from kyso_signing.pki import signer
from kyso_signing.remote.clients import CallbackRefused, Clients, OAuthError


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    return build()[1].openapi()  # type: ignore[no-any-return]


def validator(doc: dict[str, Any], name: str) -> jsonschema.Draft202012Validator:
    components = doc["components"]["schemas"]
    schema = json.loads(
        json.dumps({**components[name], "$defs": components}).replace("#/components/schemas/", "#/$defs/")
    )
    return jsonschema.Draft202012Validator(schema)


def refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return own + [r for v in node.values() for r in refs(v)]
    return [r for v in node for r in refs(v)] if isinstance(node, list) else []


def test_the_document_is_valid_and_every_reference_resolves(doc: dict[str, Any]) -> None:
    for schema in doc["components"]["schemas"].values():
        jsonschema.Draft202012Validator.check_schema(schema)
    names = set(doc["components"]["schemas"])
    missing = {r for r in refs(doc) if r.removeprefix("#/components/schemas/") not in names}
    assert not missing  # the CSC bodies the routes parse themselves are in the components too


def test_the_weak_pin_list_is_exactly_what_the_server_refuses() -> None:
    weak = set(weak_pins())
    for n in range(1_000_000):  # every 6-digit PIN
        pin = f"{n:06d}"
        assert (pin in weak) == (keywrap.pin_problem(pin) is not None), pin
    rng = random.Random(24)
    longer = [p for p in weak if len(p) > 6] + [f"{rng.randrange(10**k):0{k}d}" for k in (7, 8) for _ in range(20000)]
    for pin in longer:
        assert (pin in weak) == (keywrap.pin_problem(pin) is not None), pin


def test_a_pin_being_set_is_valid_in_the_schema_exactly_when_the_server_takes_it(doc: dict[str, Any]) -> None:
    activation = validator(doc, "ActivationRequest")
    unlock = validator(doc, "PinUnlockRequest")
    candidates = [*weak_pins(), "975310", "2468013", "50284719", "12345", "123456789", "12a456", "١٢٣٤٥٦", ""]
    for pin in candidates:
        server_takes = keywrap.pin_problem(pin) is None
        assert activation.is_valid({"pin": pin}) == server_takes, pin
        assert unlock.is_valid({"current_pin": "975310", "new_pin": pin}) == server_takes, pin
    # the PIN typed to confirm is only checked against the key: any 6-8 digits may be tried
    assert validator(doc, "ConfirmRequest").is_valid({"pin": "000000"})


def digest_candidates(size: int) -> list[str]:
    rng = random.Random(size)
    out: list[str] = []
    for n in (size - 1, size, size + 1):
        raw = rng.randbytes(n)
        for text in (base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode()):
            bare = text.rstrip("=")
            out += [text, bare, bare + "=", bare + "==", bare + "===", "=" + bare, bare[:-1] + "*", " " + text]
            out.append(bare.replace("A", "+", 1).replace("B", "_", 1))  # both alphabets at once
    out += ["", "=", "A" * 44, "A" * 43 + "B", "A" * 42 + "==", "A" * 65, "A" * 87 + "="]
    return out


@pytest.mark.parametrize("algorithm", sorted(signer.HASHES))
def test_digests_valid_in_the_schema_are_those_the_server_decodes(doc: dict[str, Any], algorithm: str) -> None:
    document = validator(doc, "DocumentIn")
    csc = validator(doc, "AuthorizeIn")
    timestamp = validator(doc, "TimestampIn")
    h = signer.HASHES[algorithm]
    for size in (32, 48, 64):
        for text in digest_candidates(size):
            try:
                signer.decode_hash(text, h)  # what remote.submit and the CSC methods use
                server_takes = True
            except ValueError:
                server_takes = False
            body = {"label": "a", "hash": text, "hash_algorithm": algorithm}
            if algorithm == "sha256":
                assert document.is_valid({"label": "a", "hash": text}) == server_takes, text  # the default
            assert document.is_valid(body) == server_takes, (algorithm, text)
            authorize = {"credentialID": "c", "numSignatures": 1, "hashes": [text], "hashAlgorithmOID": h.oid}
            assert csc.is_valid(authorize) == server_takes, (algorithm, text)
            assert timestamp.is_valid({"hash": text, "hashAlgo": h.oid}) == server_takes, (algorithm, text)
    assert not csc.is_valid({"credentialID": "c", "numSignatures": 1, "hashes": ["A" * 43], "hashAlgorithmOID": "1.2"})
    assert not csc.is_valid({"credentialID": "c", "numSignatures": 1, "hashes": ["A" * 43], "authData": [
        {"id": "PIN", "value": "123456"}]})  # fmt: skip


def test_revocation_reasons_go_with_revoke_only(doc: dict[str, Any]) -> None:
    clock = FakeClock()
    schema = validator(doc, "LifecycleRequest")
    subscriber = validator(doc, "SubscriberLifecycleRequest")
    past = (clock.now() - timedelta(days=1)).isoformat()
    reasons = ["unspecified", "keyCompromise", "superseded", "cessationOfOperation", "certificateHold", "nonsense"]
    for action in ("revoke", "suspend", "resume"):
        for reason in reasons:
            for invalidity in (None, past):
                body: dict[str, Any] = {"action": action, "reason": reason}
                if invalidity:
                    body["invalidity_date"] = invalidity
                try:
                    http_api._checked(LifecycleRequest.model_validate(body), clock)
                    server_takes = True
                except (Invalid, ValueError):
                    server_takes = False
                assert schema.is_valid(body) == server_takes, body
                assert subscriber.is_valid(body) == (server_takes and action != "resume"), body  # resume_by_operator


async def test_webhook_and_origin_urls_are_http_or_https(doc: dict[str, Any]) -> None:
    clock = FakeClock(datetime(2025, 1, 1, tzinfo=UTC))
    clients = Clients(MemoryStore(EventFactory("/kyso/test", clock)), SecretBox(dev_master_key("signing-keys")), clock)
    schema = validator(doc, "RelyingPartyRequest")
    urls = ["https://rp.example.vn/hooks", "HTTP://rp.example.vn:8080/h", "ftp://rp.example.vn/h", "javascript:x",
            "//rp.example.vn/h", "https:///h", "rp.example.vn/h", "file:///etc/passwd"]  # fmt: skip
    for url in urls:
        try:
            clients.allowed_origins([], url)
            server_takes = True
        except CallbackRefused:
            server_takes = False
        assert schema.is_valid({"name": "rp", "webhook_url": url}) == server_takes, url


async def test_grant_type_is_required_and_only_client_credentials(doc: dict[str, Any]) -> None:
    schema = validator(doc, "TokenRequest")
    op = doc["paths"]["/v1/oauth2/token"]["post"]
    assert op["requestBody"]["required"] is True
    clock = FakeClock(datetime(2025, 1, 1, tzinfo=UTC))
    clients = Clients(MemoryStore(EventFactory("/kyso/test", clock)), SecretBox(dev_master_key("signing-keys")), clock)
    for form, error in (({}, "invalid_request"), ({"grant_type": "password"}, "unsupported_grant_type")):
        assert not schema.is_valid(form)
        with pytest.raises(OAuthError) as refused:
            await clients.token(form.get("grant_type"), "c", "s")
        assert refused.value.error == error  # a missing grant_type stays RFC 6749's invalid_request
    assert schema.is_valid({"grant_type": "client_credentials", "client_id": "c", "client_secret": "s"})


def test_bodies_and_answers_are_documented_as_served(doc: dict[str, Any]) -> None:
    paths = doc["paths"]
    assert paths["/ocsp"]["post"]["requestBody"]["required"] is True
    assert set(paths["/ocsp"]["post"]["requestBody"]["content"]) == {"application/ocsp-request"}
    assert paths["/tsa"]["post"]["requestBody"]["required"] is True
    assert set(paths["/tsa"]["post"]["requestBody"]["content"]) == {"application/timestamp-query"}
    assert paths["/csc/v2/info"]["post"]["requestBody"]["required"] is False
    authorize = paths["/csc/v2/credentials/authorize"]["post"]["responses"]
    assert authorize["202"]["content"]["application/json"]["schema"]["$ref"].endswith("/HandleOut")
    assert "200" not in authorize
    check = paths["/csc/v2/credentials/authorizeCheck"]["post"]["responses"]
    assert check["202"]["content"]["application/json"]["schema"]["$ref"].endswith("/HandleOut")
    assert check["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/SadOut")
    assert "404" in paths["/ocsp/{encoded}"]["get"]["responses"]

    client = TestClient(build()[1])
    for body in (None, b"{}", b'{"lang": "vi"}'):  # the CSC info body is optional
        assert client.post("/csc/v2/info", content=body).status_code == 200
    assert client.post("/csc/v2/info", content=b"not json").status_code == 400
    assert client.get("/ocsp/..").status_code == 404  # the client's dot-segment removal leaves /ocsp/


def test_a_405_on_the_pdf_path_names_that_paths_own_methods() -> None:
    client = TestClient(build()[1])
    for method in ("GET", "PUT", "DELETE", "PATCH"):
        r = client.request(method, "/v1/signing-requests/pdf")
        assert r.status_code == 405 and r.headers["allow"] == "POST", (method, r.headers.get("allow"))
        assert r.json()["error"]["code"] == "method_not_allowed" and r.json()["error"]["message_vi"]
    other = client.put("/v1/signing-requests/abc")  # the templated sibling keeps its own
    assert other.status_code == 405 and other.headers["allow"] == "GET"
    assert client.get("/v1/signing-requests/abc").status_code == 401  # still routed to the status
