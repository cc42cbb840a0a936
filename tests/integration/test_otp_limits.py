"""Guessing bounds of the otp service's own counters, against the real database."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from kyso_kit.errors import DomainError, TooMany
from kyso_kit.runtime import ServiceRuntime
from kyso_otp.delivery import DevInbox
from kyso_otp.settings import OtpSettings
from kyso_otp.smartotp import SmartOtp
from kyso_otp.sms import SmsOtp

from ..conftest import Servers


@pytest.fixture
async def smartotp(servers: Servers, unique: str) -> AsyncIterator[SmartOtp]:
    settings = OtpSettings(  # type: ignore[call-arg]
        KAFKA_BOOTSTRAP_SERVERS=servers.kafka_bootstrap,
        MONGODB_URL=servers.mongodb_url,
        MONGODB_DATABASE=f"otp_limits_{unique}",
        OTP_ACTIVATION_FAILURES_PER_ADDRESS_PER_HOUR=5,
    )
    rt = ServiceRuntime(settings)
    sms = SmsOtp(rt.store, settings, DevInbox(rt.store.collection("dev_sms_inbox"), rt.clock), rt.clock)
    svc = SmartOtp(rt.store, settings, sms, rt.clock)
    await svc.init_indexes()
    try:
        yield svc
    finally:
        await rt.mongo.close()


async def test_parallel_wrong_activation_codes_are_bounded_by_the_enrolment(smartotp: SmartOtp) -> None:
    e = await smartotp._issue_activation("acct-par", "2025-01")
    wrong = [f"{n:010d}" for n in range(1, 9) if f"{n:010d}" != e["activation_code"]][:8]
    results = await asyncio.gather(
        *(smartotp.activate(e["token_id"], w, "device", client=f"10.0.1.{i}") for i, w in enumerate(wrong)),
        return_exceptions=True,
    )
    assert all(isinstance(r, DomainError) and r.code == "invalid_activation_code" for r in results)
    left = sorted(r.details["attempts_left"] for r in results if isinstance(r, DomainError))
    assert left[-5:] == [0, 1, 2, 3, 4]  # even in parallel, each answered wrong code was counted once
    tok = await smartotp.tokens.get(e["token_id"])
    assert tok is not None and tok["status"] == "voided" and tok["activation_failures"] == 5
    with pytest.raises(DomainError):
        await smartotp.activate(e["token_id"], e["activation_code"], "device", client="10.0.0.3")


async def test_the_address_backstop_never_refuses_a_first_try_at_an_enrolment(smartotp: SmartOtp) -> None:
    issued = [await smartotp._issue_activation(f"acct-{i}", "2025-01") for i in range(3)]
    for n in range(5):  # five wrong codes, each at an enrolment id the guesser does not have
        with pytest.raises(DomainError):
            await smartotp.activate(f"{n:032x}", "0123456789", "device", client="10.0.0.2")
    with pytest.raises(TooMany) as err:
        await smartotp.activate(f"{0:032x}", "0123456789", "device", client="10.0.0.2")
    assert 3590 < err.value.retry_after <= 3600
    for e in issued:  # citizens behind the same address activate at once
        assert (await smartotp.activate(e["token_id"], e["activation_code"], "device", client="10.0.0.2"))[
            "token_id"
        ] == e["token_id"]


async def test_housekeeping_forgets_ended_windows_and_old_published_challenges(smartotp: SmartOtp) -> None:
    import time
    from datetime import UTC, datetime, timedelta

    def now() -> datetime:
        return datetime.now(UTC)

    sms = smartotp.sms
    assert await sms.limits.hit("x", "k", 5, 3600) is None  # a live event
    await sms.limits._coll.insert({"_id": "old", "scope": "x", "key": "k", "at": time.time() - 3 * 24 * 3600})
    assert await sms.limits.count("x", "k", 4 * 24 * 3600) == 2
    assert await sms.limits.forget_old() == 1
    assert await sms.limits._coll.count({}) == 1

    old = now() - timedelta(days=8)
    raw = sms.challenges.raw  # type: ignore[attr-defined]
    await raw.insert_many(
        [
            {"_id": "old-published", "created_at": old, "outbox": []},
            {"_id": "old-unpublished", "created_at": old, "outbox": [{"id": "e1"}], "outbox_pending": True},
            {"_id": "recent", "created_at": now(), "outbox": []},
        ]
    )
    assert await sms.forget_old_challenges() == 1  # the store never deletes a document with unpublished events
    assert {d["_id"] for d in await sms.challenges.find({}, projection={"_id": 1})} == {"old-unpublished", "recent"}
