"""The otp service over HTTP against the real broker and database: SmartOTP guide end to end,
races, lock-out, drift, transaction-bound codes, methods and every bad input we could think of."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import time
from collections.abc import AsyncIterator

import pytest
from pymongo import AsyncMongoClient

from kyso_client.api import Endpoints, KysoApi
from kyso_client.journey import EventWatcher
from kyso_kit.devkeys import dev_master_key
from stack import Stack

from .helpers import (
    SMARTOTP_PIN,
    activate_device,
    enrolled_citizen,
    expect,
    new_citizen,
    operator_console,
    sms_verified,
    stale_token,
)


@pytest.fixture
async def otp_db(stack: Stack) -> AsyncIterator[object]:
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(stack.mongodb_url, tz_aware=True)
    try:
        yield client[f"kyso_otp_{stack.run_id}"]
    finally:
        await client.close()


async def events_of(watcher: EventWatcher, etype: str, key: str, timeout: float = 15.0) -> list[dict[str, object]]:
    deadline = time.monotonic() + timeout
    while True:
        found = [doc for _, k, doc in _all(watcher) if doc.get("type") == etype and k == key.encode()]
        if found or time.monotonic() > deadline:
            return found
        await asyncio.sleep(0.2)


def _all(watcher: EventWatcher) -> list[tuple[str, bytes | None, dict[str, object]]]:
    import json

    out = []
    for t, k, v in watcher.records:
        try:
            out.append((t, k, json.loads(v)))
        except ValueError:
            continue
    return out


# ---------------------------------------------------------------------------------------------- enrolment


async def test_enrolment_as_in_the_guide_publishes_otp_enrolled_once(api: KysoApi, watcher: EventWatcher) -> None:
    c = await new_citizen(api)
    terms = await api.smartotp_terms()
    assert terms["version"] and terms["text"]
    ch = await sms_verified(c, "smartotp_enrolment")
    await expect("terms_outdated", 409, api.smartotp_enrol(c.account_id, ch, "1999-01"))
    enrol = await api.smartotp_enrol(c.account_id, ch, terms["version"])
    assert len(enrol["activation_code"]) == 10
    await activate_device(c, enrol)
    status = await api.smartotp_status(c.token_id)
    assert status["status"] == "pending_first_code"  # not active until the first code verifies
    assert (await api.smartotp_verify(c.token_id, c.code()))["status"] == "active"
    [ev] = await events_of(watcher, "vn.kyso.otp.enrolled.v1", c.token_id)
    assert ev["data"]["account_id"] == c.account_id  # type: ignore[index]
    await expect("smartotp_already_enrolled", 409, api.smartotp_enrol(c.account_id, ch, terms["version"]))


async def test_enrolment_needs_a_fresh_credential_and_a_verified_unused_sms_code(api: KysoApi) -> None:
    c = await new_citizen(api)
    terms = (await api.smartotp_terms())["version"]
    ch = await sms_verified(c, "smartotp_enrolment")
    session = api.token
    api.token = stale_token(c.account_id)
    await expect("fresh_credential_required", 401, api.smartotp_enrol(c.account_id, ch, terms))
    api.token = session
    other_purpose = await sms_verified(c, "pin_reset")
    await expect("sms_otp_not_verified", 403, api.smartotp_enrol(c.account_id, other_purpose, terms))
    unverified = await api.sms_challenge("smartotp_enrolment", c.account_id, account_id=c.account_id)
    await expect("sms_otp_not_verified", 403, api.smartotp_enrol(c.account_id, unverified["challenge_id"], terms))
    await api.smartotp_enrol(c.account_id, ch, terms)
    await expect("sms_otp_not_verified", 403, api.smartotp_enrol(c.account_id, ch, terms))  # single use


async def test_activation_code_is_single_use_single_device_and_expires(api: KysoApi, otp_db: object) -> None:
    c = await new_citizen(api)
    terms = (await api.smartotp_terms())["version"]
    enrol = await api.smartotp_enrol(c.account_id, await sms_verified(c, "smartotp_enrolment"), terms)
    token = enrol["token_id"]
    await expect("invalid_activation_code_format", 422, api.smartotp_activate(token, "12345", "dev1"))
    await expect("invalid_activation_code_format", 422, api.smartotp_activate(token, "12345abcde", "dev1"))
    wrong = f"{(int(enrol['activation_code']) + 1) % 10**10:010d}"
    refused = await expect("invalid_activation_code", 400, api.smartotp_activate(token, wrong, "dev1"))
    assert refused.body["error"]["details"] == {"attempts_left": 4}  # the enrolment counts its wrong codes
    first, second = await asyncio.gather(
        api.smartotp_activate(token, enrol["activation_code"], "phone-a"),
        api.smartotp_activate(token, enrol["activation_code"], "phone-b"),
        return_exceptions=True,
    )
    assert [isinstance(x, dict) for x in (first, second)].count(True) == 1  # exactly one device wins
    await expect("invalid_activation_code", 400, api.smartotp_activate(token, enrol["activation_code"], "phone-c"))

    # An expired activation code fails like any other wrong one.
    c2 = await new_citizen(api)
    late = await api.smartotp_enrol(c2.account_id, await sms_verified(c2, "smartotp_enrolment"), terms)
    from datetime import UTC, datetime, timedelta

    await otp_db["smartotp_tokens"].update_one(  # type: ignore[index]
        {"_id": late["token_id"]}, {"$set": {"activation_expires_at": datetime.now(UTC) - timedelta(seconds=1)}}
    )
    await expect(
        "invalid_activation_code", 400, api.smartotp_activate(late["token_id"], late["activation_code"], "phone-d")
    )


async def test_seed_is_stored_encrypted_and_at_least_160_bits(api: KysoApi, otp_db: object) -> None:
    c = await enrolled_citizen(api)
    doc = await otp_db["smartotp_tokens"].find_one({"_id": c.token_id})  # type: ignore[index]
    import pyotp

    from kyso_kit.crypto import SecretBox

    seed = SecretBox(dev_master_key("otp-seeds")).open(doc["seed"], aad=f"smartotp:{c.token_id}")
    assert len(seed) * 8 >= 160
    assert c.device is not None

    # The device's seed and the server's agree (the device never sent its PIN or its seed).
    def b32(raw: bytes) -> str:
        return base64.b32encode(raw).decode()

    assert seed == c.device._seed(SMARTOTP_PIN)
    assert pyotp.HOTP(b32(seed), digest=hashlib.sha256).at(1) == pyotp.HOTP(
        b32(c.device._seed(SMARTOTP_PIN)), digest=hashlib.sha256
    ).at(1)
    raw = repr(doc)
    assert seed.hex() not in raw and str(doc.get("seed", "")) != seed.hex()


# ---------------------------------------------------------------------------------------------- verification


async def test_replay_and_concurrent_use_of_one_code_succeed_exactly_once(api: KysoApi) -> None:
    c = await enrolled_citizen(api)
    code = c.code(device_time=time.time() + 30)  # next step: not yet used
    results = await asyncio.gather(*(api.smartotp_verify(c.token_id, code) for _ in range(6)), return_exceptions=True)
    assert sum(isinstance(r, dict) and r["valid"] for r in results) == 1
    await expect("invalid_otp", 400, api.smartotp_verify(c.token_id, code))  # replay inside its window


async def test_five_wrong_codes_lock_the_token_and_locked_answers_like_wrong(
    api: KysoApi, watcher: EventWatcher
) -> None:
    c = await enrolled_citizen(api)
    right = c.code(device_time=time.time() + 30)
    wrong = f"{(int(right) + 1) % 10**6:06d}"
    bodies = [(await expect("invalid_otp", 400, api.smartotp_verify(c.token_id, wrong))).body for _ in range(5)]
    locked = (await expect("invalid_otp", 400, api.smartotp_verify(c.token_id, right))).body
    strip = lambda b: {k: v for k, v in b["error"].items() if k != "details"}  # noqa: E731
    assert strip(locked) == strip(bodies[0])
    assert set(locked["error"]["details"]) == set(bodies[0]["error"]["details"])  # only the clock hint
    assert (await api.smartotp_status(c.token_id))["locked"] is True
    assert len(await events_of(watcher, "vn.kyso.otp.token_locked.v1", c.token_id)) == 1
    # Unlock by re-proving identity: fresh credential + SMS OTP; then codes work again.
    await api.unlock_method(c.account_id, "smartotp", sms_challenge_id=await sms_verified(c, "unlock"))
    assert (await api.smartotp_verify(c.token_id, right))["valid"]


async def test_parallel_guessing_cannot_exceed_the_limit(api: KysoApi, otp_db: object) -> None:
    c = await enrolled_citizen(api)
    guesses = [f"{n:06d}" for n in range(100000, 100020)]
    await asyncio.gather(*(api.smartotp_verify(c.token_id, g) for g in guesses), return_exceptions=True)
    doc = await otp_db["smartotp_tokens"].find_one({"_id": c.token_id})  # type: ignore[index]
    assert doc["failures"] == 5  # 20 parallel guesses, 5 evaluated


async def test_clock_drift_hint_resync_and_learned_drift(api: KysoApi) -> None:
    c = await enrolled_citizen(api)
    skew = 150.0  # the phone's clock is 2.5 minutes fast: five steps, outside the ±1 window
    skewed = time.time() + skew
    err = await expect(
        "invalid_otp",
        400,
        api.smartotp_verify_transaction(
            c.token_id,
            c.code(device_time=skewed),
            {"type": "payment", "amount_vnd": 1000, "payee": "x"},
            device_time=skewed,
        ),
    )
    assert err.body["error"]["details"]["time_sync_recommended"] is True
    ok_clock = await expect(
        "invalid_otp",
        400,
        api.smartotp_verify_transaction(c.token_id, "000000", {"type": "payment", "amount_vnd": 1000, "payee": "x"}),
    )
    assert ok_clock.body["error"]["details"]["time_sync_recommended"] is False  # says nothing about the code
    # Resync from two consecutive codes of the skewed device: the drift is learned…
    now = time.time()
    out = await api.smartotp_resync(c.token_id, c.code(device_time=now + skew), c.code(device_time=now + skew + 30))
    assert out["valid"] and out["drift_steps"] >= 5
    # …so the next code of the still-skewed device verifies.
    assert (await api.smartotp_verify(c.token_id, c.code(device_time=now + skew + 60)))["valid"]


async def test_time_sync_on_the_device_fixes_invalid_otp(api: KysoApi) -> None:
    c = await enrolled_citizen(api)
    assert c.device is not None
    wrong_clock = time.time() - 200
    await expect("invalid_otp", 400, api.smartotp_verify(c.token_id, c.code(device_time=wrong_clock)))
    offset = c.device.sync_time((await api.server_time())["server_time"], device_time=wrong_clock)
    assert 195 < offset < 215
    # The device (clock still wrong) now shows the code of the server's next step: accepted.
    mid_next_step = (time.time() // 30 + 1) * 30 + 15
    assert (await api.smartotp_verify(c.token_id, c.device.code(SMARTOTP_PIN, device_time=mid_next_step - offset)))[
        "valid"
    ]


async def test_transaction_bound_code_verifies_only_for_that_transaction(api: KysoApi) -> None:
    from kyso_contracts.transactions import DocumentsTransaction, PaymentTransaction

    c = await enrolled_citizen(api)
    assert c.device is not None
    t = time.time()
    pay = PaymentTransaction(amount_vnd=800_000, payee="kyso")
    code = c.device.transaction_code(SMARTOTP_PIN, pay, device_time=t)
    await expect(
        "invalid_otp",
        400,
        api.smartotp_verify_transaction(c.token_id, code, {"type": "payment", "amount_vnd": 800_001, "payee": "kyso"}),
    )
    await expect(
        "invalid_otp",
        400,
        api.smartotp_verify_transaction(c.token_id, code, {"type": "payment", "amount_vnd": 800_000, "payee": "kyso2"}),
    )
    out = await api.smartotp_verify_transaction(c.token_id, code, pay.model_dump())
    assert out["valid"] and out["transaction_digest"] == pay.digest()
    docs = DocumentsTransaction(document_hashes=["a" * 64, "b" * 64])
    dcode = c.device.transaction_code(SMARTOTP_PIN, docs, device_time=t + 30)
    await expect(
        "invalid_otp",
        400,
        api.smartotp_verify_transaction(c.token_id, dcode, {"type": "documents", "document_hashes": ["a" * 64]}),
    )
    assert (await api.smartotp_verify_transaction(c.token_id, dcode, docs.model_dump()))["valid"]


# ---------------------------------------------------------------------------------------------- methods


async def test_method_change_needs_a_fresh_credential_and_emits_an_event(api: KysoApi, watcher: EventWatcher) -> None:
    c = await new_citizen(api)
    await expect("method_unavailable", 409, api.set_preferred_method(c.account_id, "smartotp"))
    await activate_device(
        c,
        await api.smartotp_enrol(
            c.account_id, await sms_verified(c, "smartotp_enrolment"), (await api.smartotp_terms())["version"]
        ),
    )
    await api.smartotp_verify(c.token_id, c.code())
    session = api.token
    api.token = stale_token(c.account_id)
    await expect("fresh_credential_required", 401, api.set_preferred_method(c.account_id, "smartotp"))
    api.token = session
    view = await api.set_preferred_method(c.account_id, "smartotp")
    assert view["preferred"] == "smartotp"
    [ev] = await events_of(watcher, "vn.kyso.otp.method_changed.v1", c.account_id)
    assert ev["data"]["previous"] == "sms"  # type: ignore[index]


async def test_operator_locks_one_method_the_other_keeps_working(
    api: KysoApi, stack: Stack, endpoints: Endpoints, watcher: EventWatcher
) -> None:
    op = await operator_console(stack, endpoints)
    auditor = await operator_console(stack, endpoints, ("auditor",))
    c = await enrolled_citizen(api)
    # A subscriber's own session, an auditor's and no session at all cannot lock anything.
    await expect("role_required", 403, api.operator_lock(c.account_id, "smartotp", "fraud check"))
    await expect("role_required", 403, auditor.operator_lock(c.account_id, "smartotp", "fraud check"))
    anonymous = KysoApi(endpoints)
    anonymous.token = "not-a-token"
    await expect("unauthorized", 401, anonymous.operator_lock(c.account_id, "smartotp", "fraud check"))
    view = await op.operator_lock(c.account_id, "smartotp", "suspected device theft")
    assert view["methods"]["smartotp"]["locked"] and view["methods"]["smartotp"]["lock_reason"]
    assert await events_of(watcher, "vn.kyso.otp.method_locked.v1", c.account_id)
    await expect("invalid_otp", 400, api.smartotp_verify(c.token_id, c.code(device_time=time.time() + 30)))
    await sms_verified(c, "contract_consent", "contract-x")  # SMS still works
    await expect("other_method_locked", 409, op.operator_lock(c.account_id, "sms", "both?"))
    await api.unlock_method(c.account_id, "smartotp", sms_challenge_id=await sms_verified(c, "unlock"))
    assert await events_of(watcher, "vn.kyso.otp.method_unlocked.v1", c.account_id)
    # Now lock SMS: SMS challenges refuse, SmartOTP works, and SmartOTP proves identity to unlock SMS.
    await op.operator_lock(c.account_id, "sms", "SIM swap reported")
    await expect("method_locked", 403, api.sms_challenge("contract_consent", "contract-y", account_id=c.account_id))
    assert (await api.smartotp_verify(c.token_id, c.code()))["valid"]
    view = await api.unlock_method(c.account_id, "sms", token_id=c.token_id, code=c.code(device_time=time.time() + 30))
    assert not view["methods"]["sms"]["locked"]


async def test_forgotten_pin_revokes_the_old_token_and_enrols_again(api: KysoApi, watcher: EventWatcher) -> None:
    c = await enrolled_citizen(api)
    old_token, old_device = c.token_id, c.device
    assert old_device is not None
    out = await api.smartotp_pin_reset(await sms_verified(c, "pin_reset"))
    assert out["revoked_token_ids"] == [old_token]
    assert await events_of(watcher, "vn.kyso.otp.token_revoked.v1", old_token)
    await expect("invalid_otp", 400, api.smartotp_verify(old_token, old_device.code(SMARTOTP_PIN, time.time() + 30)))
    await activate_device(c, out)
    assert (await api.smartotp_verify(c.token_id, c.code()))["valid"]
    assert len(await events_of(watcher, "vn.kyso.otp.enrolled.v1", c.token_id)) == 1


# ---------------------------------------------------------------------------------------------- SMS OTP


async def test_sms_resend_cooldown_and_caps_answer_with_retry_after(api: KysoApi) -> None:
    c = await new_citizen(api)
    ch = await api.sms_challenge("contract_consent", "contract-r", account_id=c.account_id)
    err = await expect("resend_too_soon", 429, api.resend_sms(ch["challenge_id"]))
    assert 0 < err.body["error"]["details"]["retry_after_seconds"] <= 60
    subject = f"contract-capped-{c.account_id[:8]}"
    for _ in range(5):  # the fifth challenge for one subject in an hour is the last allowed
        await api.sms_challenge("contract_consent", subject, account_id=c.account_id)
    err = await expect(
        "too_many_otp_requests", 429, api.sms_challenge("contract_consent", subject, account_id=c.account_id)
    )
    assert err.body["error"]["details"]["retry_after_seconds"] > 0


async def test_sms_resend_replaces_the_code_but_not_the_try_counter(api: KysoApi, otp_db: object) -> None:
    from datetime import UTC, datetime, timedelta

    c = await new_citizen(api)
    ch = await api.sms_challenge("contract_consent", "contract-s", account_id=c.account_id)
    old = await api.dev_sms_code(c.phone, ch["challenge_id"])
    for _ in range(2):
        await expect("invalid_otp", 400, api.verify_sms(ch["challenge_id"], f"{(int(old) + 1) % 10**6:06d}"))
    await otp_db["sms_challenges"].update_one(  # type: ignore[index]
        {"_id": ch["challenge_id"]}, {"$set": {"last_sent_at": datetime.now(UTC) - timedelta(seconds=61)}}
    )
    resent = await api.resend_sms(ch["challenge_id"])
    assert resent["resends_left"] == 2
    doc = await otp_db["sms_challenges"].find_one({"_id": ch["challenge_id"]})  # type: ignore[index]
    assert doc["attempts"] == 2
    inbox = (await api.call("GET", f"{api.ep.otp}/v1/dev/sms-inbox", params={"phone": c.phone}))["messages"]
    import re

    new = re.search(r"\b(\d{6})\b", inbox[0]["text"]).group(1)  # type: ignore[union-attr]
    if new != old:
        await expect("invalid_otp", 400, api.verify_sms(ch["challenge_id"], old))
    assert (await api.verify_sms(ch["challenge_id"], new))["verified"]


async def test_malformed_codes_are_422_and_use_up_no_tries(api: KysoApi) -> None:
    import uuid

    from kyso_client import vneid

    phone = vneid.random_phone()
    ch = await api.sms_challenge("phone_verification", f"reg-{uuid.uuid4().hex[:8]}", phone=phone)
    for bad in ("12345", "1234567", "12a456", "١٢٣٤٥٦", "      ", "123 456"):
        await expect("invalid_code_format", 422, api.verify_sms(ch["challenge_id"], bad))
    await expect("invalid_request", 422, api.verify_sms(ch["challenge_id"], ""))
    await expect("invalid_request", 422, api.verify_sms(ch["challenge_id"], "1" * 17))
    assert (await api.verify_sms(ch["challenge_id"], await api.dev_sms_code(phone, ch["challenge_id"])))["verified"]
    await expect("invalid_otp", 400, api.verify_sms("no-such-challenge", "123456"))
    await expect("invalid_request", 422, api.sms_challenge("phone_verification", "r", phone="0912345678"))
    await expect("invalid_request", 422, api.sms_challenge("phone_verification", "bad id!", phone=phone))
    await expect("phone_required", 422, api.sms_challenge("phone_verification", "r2"))


async def test_malformed_smartotp_requests_are_422(api: KysoApi) -> None:
    c = await enrolled_citizen(api)
    for bad in ("12345", "1234567", "abcdef"):
        await expect("invalid_code_format", 422, api.smartotp_verify(c.token_id, bad))
    await expect(
        "invalid_request",
        422,
        api.smartotp_verify_transaction(c.token_id, c.code(), {"type": "payment", "amount_vnd": -5, "payee": "x"}),
    )
    await expect(
        "invalid_request",
        422,
        api.smartotp_verify_transaction(c.token_id, c.code(), {"type": "documents", "document_hashes": ["xyz"]}),
    )
    await expect(
        "invalid_request",
        422,
        api.smartotp_verify_transaction(c.token_id, c.code(), {"type": "lottery", "amount_vnd": 5}),
    )
    await expect("invalid_request", 422, api.smartotp_resync(c.token_id, "123456", ""))
    assert (await api.smartotp_status(c.token_id))["locked"] is False  # none of that counted as a try
    await expect("invalid_otp", 400, api.smartotp_verify("no-such-token", "123456"))
