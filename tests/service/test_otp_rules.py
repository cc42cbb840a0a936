"""OTP rules: SMS challenges (tries, expiry, resend, caps, delivery failure) and SmartOTP tokens
(activation expiry, replay, lock-out, transaction binding), all on the injected clock."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest

from kyso_client.device import SoftToken
from kyso_contracts import AccountCreated, OtpEnrolled, OtpPurpose, OtpTokenLocked, SmsOtpVerified
from kyso_contracts.transactions import DocumentsTransaction
from kyso_kit.clock import FakeClock
from kyso_kit.errors import Forbidden, Rejected, TooMany, Upstream
from kyso_kit.machines import allowed
from kyso_kit.routing import deliver
from kyso_kit.store import MemoryStore
from kyso_otp.core import build_core
from kyso_otp.domain import CHALLENGE_TRANSITIONS, TOKEN_TRANSITIONS, ChallengeStatus, TokenStatus
from kyso_otp.handlers import HANDLERS
from kyso_otp.settings import OtpSettings
from kyso_otp.smartotp import SmartOtp

from .conftest import FakeSms, delivered

PHONE = "+84912345678"
ACCOUNT = "acct-1"
PIN = "730514"


class Otp:
    def __init__(self, store: MemoryStore, clock: FakeClock, **settings: Any) -> None:
        self.clock = clock
        self.settings = OtpSettings(**settings)
        self.sender = FakeSms()
        self.core = build_core(store, clock, self.settings, self.sender)  # as bootstrap builds it
        self.sms = self.core.sms
        self.smartotp = self.core.smartotp

    async def start(self) -> None:
        await self.core.start()
        await self.account(ACCOUNT, PHONE)

    async def account(self, account_id: str, phone: str) -> None:
        created = AccountCreated(
            account_id=account_id, registration_id="r1", citizen_id="001099012345", phone=phone, email="a@b.vn",
            created_at=self.clock.now(),
        )  # fmt: skip
        assert await deliver(HANDLERS, self.core, delivered(created, self.clock))

    async def challenge(
        self, purpose: OtpPurpose = OtpPurpose.CONTRACT_CONSENT, subject: str = "k1", account: str = ACCOUNT
    ) -> str:
        ch = await self.sms.create(purpose, subject, None, account, "a" * 64)
        return str(ch["challenge_id"])

    async def enrolment(self, account: str = ACCOUNT) -> dict[str, Any]:
        """A SmartOTP enrolment as the guide has it: an SMS code, then the activation code."""
        ch = await self.challenge(OtpPurpose.SMARTOTP_ENROLMENT, account, account)
        await self.sms.verify(ch, self.sender.last_code(ch))
        return await self.smartotp.enrol(account, self.settings.terms_version, ch)

    async def device(self) -> SoftToken:
        ch = await self.challenge(OtpPurpose.SMARTOTP_ENROLMENT, ACCOUNT)
        await self.sms.verify(ch, self.sender.last_code(ch))
        enrolment = await self.smartotp.enrol(ACCOUNT, self.settings.terms_version, ch)
        activation = await self.smartotp.activate(
            enrolment["token_id"], enrolment["activation_code"], "device-1", client="198.51.100.7"
        )
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
        await otp.smartotp.activate(
            enrolment["token_id"], enrolment["activation_code"], "device-1", client="198.51.100.7"
        )


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
    assert await deliver(HANDLERS, otp.core, delivered(created, clock))
    challenge = await asyncio.wait_for(waiting, 1)
    assert challenge["phone_masked"].endswith("699")


# ------------------------------------------------------------------ limits bind to what is guessed

NAT = "203.0.113.10"  # a carrier-grade NAT: a guesser and a citizen share this address


def wrong_code(right: str) -> str:
    return f"{(int(right) + 1) % 10**10:010d}"


async def test_five_wrong_activation_codes_void_that_enrolment_and_only_that_one(otp: Otp) -> None:
    await otp.account("acct-2", "+84987654321")
    mine, theirs = await otp.enrolment(), await otp.enrolment("acct-2")
    for left in (4, 3, 2, 1, 0):
        with pytest.raises(Rejected) as err:
            await otp.smartotp.activate(mine["token_id"], wrong_code(mine["activation_code"]), "d", client=NAT)
        assert err.value.details == {"attempts_left": left}
    with pytest.raises(Rejected):  # void: now even the right code fails
        await otp.smartotp.activate(mine["token_id"], mine["activation_code"], "d", client=NAT)
    assert (await otp.smartotp.tokens.get(mine["token_id"]) or {})["status"] == "voided"
    # Another enrolment behind the same address is untouched, and activates at once.
    assert await otp.smartotp.activate(theirs["token_id"], theirs["activation_code"], "d2", client=NAT)
    # The voided one's subscriber starts again with a fresh SMS-verified enrolment.
    again = await otp.enrolment()
    assert await otp.smartotp.activate(again["token_id"], again["activation_code"], "d", client=NAT)


async def test_a_guesser_spraying_from_a_nat_does_not_stop_a_citizen_behind_it(
    store: MemoryStore, clock: FakeClock
) -> None:
    otp = Otp(store, clock, OTP_ACTIVATION_FAILURES_PER_ADDRESS_PER_HOUR=10)
    await otp.start()
    await otp.account("acct-2", "+84987654321")
    clock.advance(minutes=50)  # 02:50
    sprayed = [uuid.uuid4().hex for _ in range(10)]  # enrolment ids it does not have: wrong, counted
    for token_id in sprayed:
        with pytest.raises(Rejected):
            await otp.smartotp.activate(token_id, "0123456789", "g", client=NAT)
    with pytest.raises(TooMany) as err:  # the address-wide backstop is reached...
        await otp.smartotp.activate(sprayed[0], "0123456789", "g", client=NAT)
    assert err.value.retry_after == 3600  # all ten a moment ago; a clock-hour window would say 600
    # ...and a citizen behind the same address activates their own device at once.
    citizen = await otp.enrolment("acct-2")
    assert await otp.smartotp.activate(citizen["token_id"], citizen["activation_code"], "d", client=NAT)
    # An enrolment that already saw a wrong code is not tried further from the spraying address, also
    # at 03:05 (a new clock hour: the window slides, it does not reset).
    clock.advance(minutes=15)
    other = await otp.enrolment()
    with pytest.raises(Rejected):  # the first try at an untouched enrolment is answered
        await otp.smartotp.activate(other["token_id"], wrong_code(other["activation_code"]), "g", client=NAT)
    with pytest.raises(TooMany):
        await otp.smartotp.activate(other["token_id"], other["activation_code"], "g", client=NAT)
    clock.advance(minutes=46)  # 03:51: the sprayed codes are an hour old and no longer count
    last = await otp.enrolment()
    with pytest.raises(Rejected):
        await otp.smartotp.activate(last["token_id"], wrong_code(last["activation_code"]), "d", client=NAT)
    assert await otp.smartotp.activate(last["token_id"], last["activation_code"], "d", client=NAT)


async def test_whoever_fills_a_phones_cap_anonymously_never_stops_its_accounts_codes(
    otp: Otp, clock: FakeClock
) -> None:
    clock.advance(minutes=50)
    for i in range(10):  # phone verification needs no account: anyone may ask for the number
        await otp.sms.create(OtpPurpose.PHONE_VERIFICATION, f"reg-{i}", PHONE, ACCOUNT, None)
    with pytest.raises(TooMany):
        await otp.sms.create(OtpPurpose.PHONE_VERIFICATION, "reg-x", PHONE, None, None)
    clock.advance(minutes=15)  # a new clock hour: the cap slides, it does not reset
    with pytest.raises(TooMany):
        await otp.sms.create(OtpPurpose.PHONE_VERIFICATION, "reg-y", PHONE, None, None)
    # The account owning that phone (naming it in those bodies changed nothing) still gets its codes.
    ch = await otp.challenge(OtpPurpose.CONTRACT_CONSENT, "contract-1")
    assert (await otp.sms.verify(ch, otp.sender.last_code(ch)))["verified"]


async def test_an_sms_code_guesser_kills_only_its_own_challenge(otp: Otp) -> None:
    await otp.account("acct-2", "+84987654321")
    guessed = await otp.challenge(subject="k-guessed")
    citizens = await otp.challenge(subject="k-own", account="acct-2")
    right = otp.sender.last_code(guessed)
    for _ in range(5):
        with pytest.raises(Rejected):
            await otp.sms.verify(guessed, "000000" if right != "000000" else "111111")
    with pytest.raises(Rejected):
        await otp.sms.verify(guessed, right)
    assert (await otp.sms.verify(citizens, otp.sender.last_code(citizens)))["verified"]


# --------------------------------------------------------------------------- the writes agree with the tables


@pytest.mark.parametrize("status", list(TokenStatus))
async def test_revoking_and_using_a_token_follow_the_token_table(otp: Otp, status: TokenStatus) -> None:
    """The status filters of the use cases are the table's: a token in each status is revoked exactly
    when the table lets it be, and a code is checked only on a token the table lets ``use``."""
    await otp.smartotp.tokens.insert(
        {"_id": f"t-{status.value}", "account_id": "acct-t", "status": status.value, "seed": None}
    )
    revoked = await otp.smartotp.revoke_all("acct-t", "pin_forgotten")
    assert (revoked == [f"t-{status.value}"]) == bool(allowed(TOKEN_TRANSITIONS, status, "revoke"))


@pytest.mark.parametrize("status", list(ChallengeStatus))
async def test_verifying_a_challenge_follows_the_challenge_table(otp: Otp, status: ChallengeStatus) -> None:
    ch = await otp.challenge()
    code = otp.sender.last_code(ch)
    await otp.sms.challenges.update({"_id": ch}, {"$set": {"status": status.value}})
    if allowed(CHALLENGE_TRANSITIONS, status, "verify"):
        assert (await otp.sms.verify(ch, code))["verified"] is True
    else:
        with pytest.raises(Rejected):
            await otp.sms.verify(ch, code)
