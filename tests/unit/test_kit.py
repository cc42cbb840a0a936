from __future__ import annotations

import base64
import json
import os
import time
from datetime import UTC, datetime

import pytest

from kyso_contracts import AccountCreated, wrap
from kyso_kit.auth import Principal, TokenIssuer, TokenVerifier, may, public_pem_of
from kyso_kit.clock import FakeClock
from kyso_kit.crypto import SecretBox, hash_secret, verify_secret
from kyso_kit.devkeys import dev_ec_private_pem
from kyso_kit.errors import Unauthenticated
from kyso_kit.logs import JsonFormatter, correlation_id
from kyso_kit.outbox import outbox_entry
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
    assert verifier.verify(tok) == Principal("acct1", frozenset({"subscriber"}))
    assert TokenVerifier(issuer.jwks()).verify(tok).account_id == "acct1"  # the JWKS registration serves
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
    # a signature with one character changed in its middle (the last characters carry padding bits)
    flipped = s[:20] + ("B" if s[20] != "B" else "C") + s[21:]
    for bad in (f"{h}.{forged_body}.{s}", f"{h}.{_b}.{flipped}", "a.b", "", "x.y.z"):
        with pytest.raises(Unauthenticated) as err:
            verifier.verify(bad)
        assert err.value.code == "unauthorized"
    other = TokenIssuer(dev_ec_private_pem("someone-else")).issue("acct1")
    with pytest.raises(Unauthenticated):
        verifier.verify(other)
    expired = TokenIssuer(dev_ec_private_pem("auth"), ttl_seconds=-120).issue("acct1")
    with pytest.raises(Unauthenticated):
        verifier.verify(expired)


def test_tokens_carry_roles_and_organisation_and_the_clock_decides_expiry() -> None:
    clock = FakeClock()
    issuer = TokenIssuer(dev_ec_private_pem("auth"), ttl_seconds=60, clock=clock)
    verifier = TokenVerifier(issuer.jwks(), clock)
    tok = issuer.issue("op1", roles=["operator"], organisation_id="org1", auth_time=int(clock.time()), amr=["pwd"])
    who = verifier.verify(tok)
    assert who.has("operator") and not who.has("subscriber") and who.organisation_id == "org1"
    assert who.amr == ("pwd",)
    clock.advance(seconds=60 + 29)  # inside the leeway
    verifier.verify(tok)
    clock.advance(seconds=2)
    with pytest.raises(Unauthenticated):
        verifier.verify(tok)
    forged_role = TokenIssuer(dev_ec_private_pem("auth"), clock=clock).issue("x", roles=["superuser"])
    with pytest.raises(Unauthenticated):
        verifier.verify(forged_role)


def test_the_policy_answers_who_may_act_on_what() -> None:
    owner, other = Principal("a1"), Principal("a2")
    operator = Principal("op", frozenset({"operator"}))
    auditor = Principal("au", frozenset({"auditor"}))
    assert may(owner, "a1") and may(owner, "a1", "sign")
    assert not may(other, "a1", "read") and not may(other, None)
    assert may(operator, "a1", "write") and not may(operator, "a1", "sign")  # sole control stays with the owner
    assert may(auditor, "a1", "read") and not may(auditor, "a1", "write")


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


async def test_a_change_that_lands_while_reading_still_wakes_the_long_poll() -> None:
    import asyncio

    from kyso_kit.changes import Changes

    changes = Changes()
    reads = []

    async def read() -> str:
        reads.append(1)
        if len(reads) == 1:
            await asyncio.sleep(0)
            changes.notify("order-1")  # the handler changed it while this read was in flight
            return "old"
        return "new"

    t0 = time.perf_counter()
    assert await changes.read_when("order-1", read, lambda v: v == "new", 5) == "new"
    assert time.perf_counter() - t0 < 0.5 and len(reads) == 2
    assert await changes.read_when("order-1", read, lambda v: v == "never", 0.05) == "new"  # times out


async def test_a_rotated_signing_key_is_fetched_from_the_jwks_url() -> None:
    import httpx
    from fastapi import FastAPI

    from kyso_kit.auth import jwks_fetcher

    clock = FakeClock()
    old = TokenIssuer(dev_ec_private_pem("auth"), clock=clock)
    new = TokenIssuer(dev_ec_private_pem("auth-2027"), clock=clock)
    published = [old]
    registration = FastAPI()

    @registration.get("/.well-known/jwks.json")
    async def jwks() -> dict[str, object]:
        return {"keys": [k for issuer in published for k in issuer.jwks()["keys"]]}

    transport = httpx.ASGITransport(app=registration)

    def fetch_over_http() -> object:
        async def fetch() -> dict[str, object]:
            async with httpx.AsyncClient(transport=transport, base_url="http://registration") as client:
                return (await client.get("/.well-known/jwks.json")).json()  # type: ignore[no-any-return]

        return fetch

    assert jwks_fetcher("http://registration/.well-known/jwks.json")  # the production fetcher builds
    verifier = TokenVerifier(None, clock, fetch=fetch_over_http(), refresh_seconds=60)  # type: ignore[arg-type]
    assert (await verifier.check(old.issue("a1"))).account_id == "a1"  # first use: keys fetched
    published[:] = [new, old]  # registration rotates: the new key signs, the old one still verifies
    clock.advance(seconds=10)
    with pytest.raises(Unauthenticated):
        await verifier.check(new.issue("a1"))  # unknown key, but fetched less than a minute ago
    clock.advance(seconds=60)
    assert (await verifier.check(new.issue("a1"))).account_id == "a1"  # fetched again, new key known
    assert (await verifier.check(old.issue("a2"))).account_id == "a2"  # the old key during the overlap
    forged = TokenIssuer(dev_ec_private_pem("mallory"), clock=clock).issue("a1")
    published[:] = [new]  # the old key is withdrawn
    clock.advance(seconds=60)
    with pytest.raises(Unauthenticated):
        await verifier.check(forged)  # a key registration never published is never trusted…
    with pytest.raises(Unauthenticated):
        await verifier.check(old.issue("a2"))  # …and a withdrawn one stops verifying
