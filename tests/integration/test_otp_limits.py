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
        OTP_ACTIVATION_ATTEMPTS_PER_CLIENT_PER_HOUR=5,
    )
    rt = ServiceRuntime(settings)
    sms = SmsOtp(rt.store, settings, DevInbox(rt.store.collection("dev_sms_inbox"), rt.clock), rt.clock)
    svc = SmartOtp(rt.store, settings, sms, rt.clock)
    await svc.init_indexes()
    try:
        yield svc
    finally:
        await rt.mongo.close()


async def test_wrong_activation_codes_are_bounded_per_client_and_right_ones_are_free(smartotp: SmartOtp) -> None:
    issued = [await smartotp._issue_activation(f"acct-{i}", "2025-01") for i in range(7)]
    for e in issued[:6]:  # right codes do not use up the allowance
        await smartotp.activate(e["activation_code"], "device", client="10.0.0.1")
    wrong = [f"{n:010d}" for n in range(1, 9)]
    results = await asyncio.gather(
        *(smartotp.activate(w, "device", client="10.0.0.2") for w in wrong), return_exceptions=True
    )
    codes = sorted(r.code for r in results if isinstance(r, DomainError))
    assert codes.count("invalid_activation_code") == 5  # even in parallel, only 5 guesses are looked at
    assert codes.count("too_many_activation_attempts") == 3
    with pytest.raises(TooMany) as err:
        await smartotp.activate(issued[6]["activation_code"], "device", client="10.0.0.2")
    assert err.value.retry_after > 0
    assert (await smartotp.activate(issued[6]["activation_code"], "device", client="10.0.0.3"))["token_id"]


async def test_housekeeping_forgets_ended_windows_and_old_published_challenges(smartotp: SmartOtp) -> None:
    import time
    from datetime import UTC, datetime, timedelta

    def now() -> datetime:
        return datetime.now(UTC)

    sms = smartotp.sms
    assert await sms.limits.hit("x", "k", 5, 3600) is None  # a live window
    await sms.limits._coll.insert({"_id": "x:k:0", "count": 3, "window_end": time.time() - 10})
    assert await sms.limits.forget_ended_windows() == 1
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
