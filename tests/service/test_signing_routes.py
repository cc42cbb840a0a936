"""Signing's routing as data (``kyso_signing.handlers``): what bootstrap subscribes, delivered here through
the same table. An SMS code goes once, by its purpose, to the one use case that asked for such codes; a code
of a purpose signing does not act on is not wanted (no database round trip)."""

from __future__ import annotations

from typing import Any

import pytest

from kyso_contracts import OtpPurpose, SmsOtpVerified
from kyso_kit.clock import FakeClock
from kyso_kit.routing import deliver, handler_names
from kyso_kit.store import MemoryStore
from kyso_signing.handlers import HANDLERS

from .conftest import delivered
from .test_signing_rules import ALICE, Signing

SIGNING_CODES = {
    OtpPurpose.CONTRACT_CONSENT: ("contracts", "when_sms_otp_verified_sign_contract"),
    OtpPurpose.CERTIFICATE_REVOCATION: ("lifecycle", "when_sms_otp_verified_apply_request"),
    OtpPurpose.SIGNATURE_CONFIRMATION: ("remote", "when_sms_otp_verified_record"),
    OtpPurpose.UNLOCK: ("pin", "when_sms_otp_verified_allow_unlock"),
}


@pytest.fixture
async def signing(store: MemoryStore, clock: FakeClock) -> Signing:
    s = Signing(store, clock)
    await s.start()
    return s


@pytest.mark.parametrize("purpose", list(OtpPurpose))
async def test_an_sms_code_goes_once_to_the_use_case_of_its_purpose(
    signing: Signing, purpose: OtpPurpose, monkeypatch: pytest.MonkeyPatch
) -> None:
    called: list[tuple[str, str]] = []
    for room, name in SIGNING_CODES.values():

        async def record(event: Any, room: str = room, name: str = name) -> None:
            called.append((room, name))

        monkeypatch.setattr(getattr(signing.core, room), name, record)
    code = SmsOtpVerified(
        challenge_id="ch-1",
        purpose=purpose,
        subject="something",
        account_id=ALICE.account_id,
        phone="+84912345678",
        binding_sha256="0" * 64,
        verified_at=signing.clock.now(),
    )
    taken = await deliver(HANDLERS, signing.core, delivered(code, signing.clock))
    assert taken == (purpose in SIGNING_CODES)
    assert called == ([SIGNING_CODES[purpose]] if purpose in SIGNING_CODES else [])


def test_each_event_signing_consumes_has_one_route(signing: Signing) -> None:
    types = [r.payload.event_type for r in HANDLERS]
    assert len(types) == len(set(types))
    names = handler_names(HANDLERS, signing.core)
    assert names["vn.kyso.signing.signature_completed.v1"] == "when_signature_completed"
    assert "vn.kyso.signing.cert_revoked.v1" not in names  # signing publishes it; it does not consume it
