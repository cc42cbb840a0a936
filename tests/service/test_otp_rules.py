"""OTP rules: SMS challenges (tries, expiry, resend, caps, delivery failure) and SmartOTP tokens
(activation expiry, replay, lock-out, transaction binding), all on the injected clock."""

from __future__ import annotations

from datetime import timedelta

import pytest

from kyso_client.device import SoftToken
from kyso_contracts import AccountCreated, OtpEnrolled, OtpPurpose, OtpTokenLocked, SmsOtpVerified
from kyso_contracts.transactions import DocumentsTransaction
from kyso_kit.clock import FakeClock
from kyso_kit.errors import Forbidden, Rejected, TooMany, Upstream
from kyso_kit.store import MemoryStore
from kyso_otp.settings import OtpSettings
from kyso_otp.smartotp import SmartOtp
from kyso_otp.sms import SmsOtp

from .conftest import FakeSms, delivered

PHONE = "+84912345678"
ACCOUNT = "acct-1"
PIN = "730514"


class Otp:
    def __init__(self, store: MemoryStore, clock: FakeClock) -> None:
        self.clock = clock
        self.settings = OtpSettings()
        self.sender = FakeSms()
        self.sms = SmsOtp(store, self.settings, self.sender, clock)
        self.smartotp = SmartOtp(store, self.settings, self.sms, clock)

    async def start(self) -> None:
        await self.sms.init_indexes()
        await self.smartotp.init_indexes()
        created = AccountCreated(
            account_id=ACCOUNT, registration_id="r1", citizen_id="001099012345", phone=PHONE, email="a@b.vn",
            created_at=self.clock.now(),
        )  # fmt: skip
        await self.sms.when_account_created_remember_phone(delivered(created, self.clock))

    async def challenge(self, purpose: OtpPurpose = OtpPurpose.CONTRACT_CONSENT, subject: str = "k1") -> str:
        ch = await self.sms.create(purpose, subject, None, ACCOUNT, "a" * 64)
        return str(ch["challenge_id"])

    async def device(self) -> SoftToken:
        ch = await self.challenge(OtpPurpose.SMARTOTP_ENROLMENT, ACCOUNT)
        await self.sms.verify(ch, self.sender.last_code(ch))
        enrolment = await self.smartotp.enrol(ACCOUNT, self.settings.terms_version, ch)
        activation = await self.smartotp.activate(enrolment["activation_code"], "device-1", client="198.51.100.7")
        token = SoftToken.from_activation(activation, PIN, PIN)
        token.clock_offset = 0  # the device is handed the fake clock's time directly below
        await self.smartotp.verify(ACCOUNT, token.token_id, token.code(PIN, self.clock.time()))
        self.clock.advance(seconds=30)
        return token


@pytest.fixture
async def otp(store: MemoryStore, clock: FakeClock) -> Otp:
    o = Otp(store, clock)
    await o.start()
    return o


async def test_an_sms_code_is_single_use_and_bound_to_its_purpose_and_digest(otp: Otp, store: MemoryStore) -> None:
    ch = await otp.challenge()
    code = otp.sender.last_code(ch)
    await otp.sms.verify(ch, code)
    with pytest.raises(Rejected):
        await otp.sms.verify(ch, code)
    [verified] = store.of_type(SmsOtpVerified)
    assert verified.data.binding_sha256 == "a" * 64 and verified.data.purpose == OtpPurpose.CONTRACT_CONSENT


async def test_five_wrong_tries_kill_the_challenge_even_for_the_right_code(otp: Otp) -> None:
    ch = await otp.challenge()
    code = otp.sender.last_code(ch)
    wrong = "000000" if code != "000000" else "111111"
    for _ in range(5):
        with pytest.raises(Rejected):
            await otp.sms.verify(ch, wrong)
    with pytest.raises(Rejected):
        await otp.sms.verify(ch, code)


async def test_an_sms_code_expires_after_five_minutes(otp: Otp, clock: FakeClock) -> None:
    ch = await otp.challenge()
    clock.advance(minutes=5)
    with pytest.raises(Rejected):
        await otp.sms.verify(ch, otp.sender.last_code(ch))


async def test_resend_waits_for_the_cooldown_and_keeps_the_try_counter(otp: Otp, clock: FakeClock) -> None:
    ch = await otp.challenge()
    with pytest.raises(Rejected):
        await otp.sms.verify(ch, "999999" if otp.sender.last_code(ch) != "999999" else "888888")
    with pytest.raises(TooMany):
        await otp.sms.resend(ch)
    clock.advance(seconds=60)
    out = await otp.sms.resend(ch)
    assert out["resends_left"] == 2
    doc = await otp.sms.challenges.get(ch)
    assert doc is not None and doc["attempts"] == 1


async def test_codes_per_phone_are_capped_per_hour(otp: Otp, clock: FakeClock) -> None:
    for i in range(10):
        await otp.challenge(subject=f"k{i}")
    with pytest.raises(TooMany) as err:
        await otp.challenge(subject="k-last")
    assert 0 < err.value.retry_after <= 3600
    clock.advance(hours=1)
    await otp.challenge(subject="k-next-hour")


async def test_a_failed_delivery_closes_the_challenge(otp: Otp) -> None:
    otp.sender.fail = True
    with pytest.raises(Upstream):
        await otp.challenge()
    [doc] = await otp.sms.challenges.find({"account_id": ACCOUNT})
    assert doc["status"] == "undeliverable"


async def test_an_activation_code_expires_and_is_single_device(otp: Otp, clock: FakeClock) -> None:
    ch = await otp.challenge(OtpPurpose.SMARTOTP_ENROLMENT, ACCOUNT)
    await otp.sms.verify(ch, otp.sender.last_code(ch))
    enrolment = await otp.smartotp.enrol(ACCOUNT, otp.settings.terms_version, ch)
    with pytest.raises(Forbidden):  # the SMS proof is single use
        await otp.smartotp.enrol(ACCOUNT, otp.settings.terms_version, ch)
    clock.advance(seconds=otp.settings.activation_ttl_seconds + 1)
    with pytest.raises(Rejected):
        await otp.smartotp.activate(enrolment["activation_code"], "device-1", client="198.51.100.7")


async def test_a_token_rejects_replays_and_locks_after_five_wrong_codes(
    otp: Otp, clock: FakeClock, store: MemoryStore
) -> None:
    token = await otp.device()
    assert store.of_type(OtpEnrolled)
    code = token.code(PIN, clock.time())
    assert (await otp.smartotp.verify(ACCOUNT, token.token_id, code))["valid"]
    with pytest.raises(Rejected):
        await otp.smartotp.verify(ACCOUNT, token.token_id, code)  # replay
    clock.advance(seconds=30)
    for _ in range(5):
        with pytest.raises(Rejected):
            await otp.smartotp.verify(ACCOUNT, token.token_id, "000000")
    with pytest.raises(Rejected):  # locked answers exactly like wrong
        await otp.smartotp.verify(ACCOUNT, token.token_id, token.code(PIN, clock.time()))
    [locked] = store.of_type(OtpTokenLocked)
    assert locked.data.failures == 5
    with pytest.raises(Forbidden):
        await otp.smartotp.verify("someone-else", token.token_id, "123456")


async def test_two_instances_never_accept_a_code_twice_nor_a_locked_token(
    otp: Otp, clock: FakeClock, store: MemoryStore
) -> None:
    """Every verdict is recorded by a write guarded by the state it was computed from, whichever process
    computed it."""
    token = await otp.device()
    other = SmartOtp(store, otp.settings, otp.sms, clock)  # a second instance of the service
    code = token.code(PIN, clock.time())
    assert (await otp.smartotp.verify(ACCOUNT, token.token_id, code))["valid"]  # remembered here
    with pytest.raises(Rejected):
        await other.verify(ACCOUNT, token.token_id, code)  # a replay on the other instance
    clock.advance(seconds=30)
    newer = token.code(PIN, clock.time())
    assert (await other.verify(ACCOUNT, token.token_id, newer))["valid"]
    with pytest.raises(Rejected):  # used on the other instance: a replay here
        await otp.smartotp.verify(ACCOUNT, token.token_id, newer)
    clock.advance(seconds=30)
    for _ in range(5):  # locked through the other instance
        with pytest.raises(Rejected):
            await other.verify(ACCOUNT, token.token_id, "000000")
    with pytest.raises(Rejected):
        await otp.smartotp.verify(ACCOUNT, token.token_id, token.code(PIN, clock.time()))
    doc = await store.collection("smartotp_tokens").get(token.token_id)
    assert doc is not None and doc["failures"] == 5


async def test_a_transaction_code_verifies_only_for_that_exact_set_of_documents(otp: Otp, clock: FakeClock) -> None:
    token = await otp.device()
    docs = DocumentsTransaction(document_hashes=["b" * 64, "c" * 64])
    other = DocumentsTransaction(document_hashes=["b" * 64, "d" * 64])
    code = token.transaction_code(PIN, docs, clock.time())
    with pytest.raises(Rejected):
        await otp.smartotp.verify(ACCOUNT, token.token_id, code, transaction_digest=other.digest())
    assert (await otp.smartotp.verify(ACCOUNT, token.token_id, code, transaction_digest=docs.digest()))["valid"]


async def test_old_challenges_are_forgotten(otp: Otp, clock: FakeClock) -> None:
    await otp.challenge()
    clock.advance(days=8)
    await otp.challenge(subject="recent")
    assert await otp.sms.forget_old_challenges(timedelta(days=7)) == 1


async def test_a_code_for_an_account_otp_is_still_learning_of_waits_for_it(otp: Otp, clock: FakeClock) -> None:
    import asyncio

    waiting = asyncio.create_task(otp.sms.create(OtpPurpose.CONTRACT_CONSENT, "k9", None, "acct-new", None))
    await asyncio.sleep(0.05)
    assert not waiting.done()
    created = AccountCreated(
        account_id="acct-new", registration_id="r2", citizen_id="001099012399", phone="+84912345699",
        email="n@b.vn", created_at=clock.now(),
    )  # fmt: skip
    await otp.sms.when_account_created_remember_phone(delivered(created, clock))
    challenge = await asyncio.wait_for(waiting, 1)
    assert challenge["phone_masked"].endswith("699")
