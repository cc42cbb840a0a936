from __future__ import annotations

import base64
import json
import os
import time
from datetime import UTC, datetime

import pytest

from kyso_contracts import AccountCreated, wrap
from kyso_kit.auth import TokenIssuer, TokenVerifier, public_pem_of
from kyso_kit.crypto import SecretBox, hash_secret, verify_secret
from kyso_kit.devkeys import dev_ec_private_pem
from kyso_kit.errors import ApiError
from kyso_kit.inbox import APPLIED_FIELD, mark_applied, once
from kyso_kit.logs import JsonFormatter, correlation_id
from kyso_kit.outbox import OUTBOX_FIELD, outbox_entry, with_events
from kyso_otp.settings import OtpSettings
from kyso_registration.settings import RegistrationSettings


def event() -> object:
    return wrap(
        AccountCreated(
            account_id="a1",
            registration_id="r1",
            citizen_id="001099012345",
            phone="+84912345678",
            email="a@b.vn",
            created_at=datetime.now(UTC),
        ),
        source="/kyso/test",
        correlation_id="c1",
    )


def test_outbox_entry_carries_topic_key_and_the_full_envelope() -> None:
    ev = event()
    entry = outbox_entry(ev)  # type: ignore[arg-type]
    assert entry["topic"] == "kyso.registration.events.v1" and entry["key"] == "a1"
    assert entry["value"]["id"] == entry["id"] and entry["value"]["type"].endswith("account_created.v1")


def test_with_events_adds_to_the_same_update_without_mutating_it() -> None:
    upd = {"$set": {"status": "x"}, "$push": {"timeline": 1}}
    merged = with_events(upd, [event()])  # type: ignore[list-item]
    assert merged["$set"] == {"status": "x"}
    assert merged["$push"]["timeline"] == 1 and len(merged["$push"][OUTBOX_FIELD]["$each"]) == 1
    assert OUTBOX_FIELD not in upd["$push"]
    assert with_events(upd, []) is upd


def test_once_and_mark_applied_guard_on_the_event_id() -> None:
    assert once("e1", {"_id": "x"}) == {"_id": "x", APPLIED_FIELD: {"$ne": "e1"}}
    assert mark_applied({"$set": {"a": 1}}, "e1") == {"$set": {"a": 1}, "$push": {APPLIED_FIELD: "e1"}}


def test_argon2id_hashes_verify_and_reject() -> None:
    h = hash_secret("correct horse")
    assert h.startswith("$argon2id$")
    assert verify_secret(h, "correct horse")
    assert not verify_secret(h, "wrong horse")
    assert not verify_secret("garbage", "x")


def test_secret_box_binds_ciphertext_to_its_owner() -> None:
    box = SecretBox(base64.b64encode(os.urandom(32)).decode())
    sealed = box.seal(b"seed", aad="token:1")
    assert box.open(sealed, aad="token:1") == b"seed"
    with pytest.raises(Exception):  # noqa: B017 - InvalidTag
        box.open(sealed, aad="token:2")
    with pytest.raises(ValueError):
        SecretBox(base64.b64encode(b"short").decode())


def test_access_tokens_verify_and_reject_tampering_expiry_and_foreign_keys() -> None:
    issuer = TokenIssuer(dev_ec_private_pem("auth"), ttl_seconds=60)
    verifier = TokenVerifier(public_pem_of(dev_ec_private_pem("auth")))
    tok = issuer.issue("acct1")
    assert verifier.verify(tok)["sub"] == "acct1"
    h, _b, s = tok.split(".")
    forged_body = (
        base64.urlsafe_b64encode(
            json.dumps(
                {"sub": "acct2", "iss": "kyso-registration", "aud": "kyso", "exp": int(time.time()) + 60}
            ).encode()
        )
        .decode()
        .rstrip("=")
    )
    for bad in (f"{h}.{forged_body}.{s}", tok[:-2] + "AA", "a.b", "", "x.y.z"):
        with pytest.raises(ApiError) as err:
            verifier.verify(bad)
        assert err.value.status == 401 and err.value.code == "unauthorized"
    other = TokenIssuer(dev_ec_private_pem("someone-else")).issue("acct1")
    with pytest.raises(ApiError):
        verifier.verify(other)
    expired = TokenIssuer(dev_ec_private_pem("auth"), ttl_seconds=-120).issue("acct1")
    with pytest.raises(ApiError):
        verifier.verify(expired)


def test_production_profile_fails_fast_without_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KYSO_PROFILE", "production")
    with pytest.raises(ValueError):
        OtpSettings()
    with pytest.raises(ValueError):
        RegistrationSettings()


def test_development_profile_has_safe_local_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KYSO_PROFILE", raising=False)
    s = OtpSettings()
    assert s.development and s.mongodb_database == "kyso_otp" and s.consumer_group == "kyso-otp"
    assert s.master_key_b64 and len(base64.b64decode(s.master_key_b64)) == 32


def test_json_logs_carry_the_correlation_id() -> None:
    import logging

    fmt = JsonFormatter("svc")
    token = correlation_id.set("corr-1")
    try:
        rec = logging.LogRecord("x", logging.INFO, __file__, 1, "hello %s", ("world",), None)
        rec.order_id = "o1"
        doc = json.loads(fmt.format(rec))
    finally:
        correlation_id.reset(token)
    assert doc["msg"] == "hello world" and doc["correlation_id"] == "corr-1" and doc["order_id"] == "o1"
    assert doc["service"] == "svc" and doc["level"] == "INFO"


def test_kafka_cluster_ids_never_look_like_options() -> None:
    import localinfra

    ids = {localinfra.new_cluster_id() for _ in range(2000)}
    assert len(ids) == 2000
    assert all(len(i) == 22 and not i.startswith("-") for i in ids)
