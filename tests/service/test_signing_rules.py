"""Signing rules: the order/payment join, amount mismatch, consent bound to the contract, issuance
recorded before signing, activation."""

from __future__ import annotations

import asyncio
import base64
import hashlib
from datetime import timedelta

import pytest
from cryptography import x509

from kyso_contracts import (
    CertActivated,
    CertIssued,
    ConsentRejected,
    ContractSigned,
    IssuanceStopped,
    OrderPlaced,
    OtpPurpose,
    PaymentAmountMismatch,
    PaymentConfirmed,
    SmsOtpVerified,
)
from kyso_kit.auth import Principal
from kyso_kit.clock import FakeClock
from kyso_kit.errors import Conflict, Forbidden, Invalid, NotFound
from kyso_kit.store import MemoryStore
from kyso_signing.core import CoreConfig, build_core
from kyso_signing.pki import keys as pki
from kyso_signing.pki import profiles
from kyso_signing.pki.hierarchy import Hierarchy
from kyso_signing.remote.clients import Target
from kyso_signing.settings import DEV_POLICY_OID

from .conftest import delivered, order_placed

MASTER = base64.b64encode(b"k" * 32).decode()
HIERARCHY = Hierarchy(
    organisation="kyso test",
    root_common_name="Test Root CA",
    issuing_common_name="Test Issuing CA",
    urls=profiles.Urls("http://127.0.0.1:8003"),
    policy_oid=DEV_POLICY_OID,
    responder_validity=timedelta(hours=48),
)
ALICE = Principal("acct-alice")


class Receiver:
    """A relying party's webhook endpoint; can be down. Remembers the address kyso connected to."""

    def __init__(self) -> None:
        self.got: list[tuple[str, bytes, dict[str, str]]] = []
        self.addresses: list[str | None] = []
        self.down = False

    async def post(self, target: Target, body: bytes, headers: dict[str, str]) -> int:
        if self.down:
            raise ConnectionError("refused")
        self.got.append((target.url, body, headers))
        self.addresses.append(target.address)
        return 204


CONFIG = CoreConfig(
    master_key_b64=MASTER,
    hierarchy=HIERARCHY,
    provider_name="kyso test",
    crl_validity=timedelta(hours=24),
    ocsp_validity=timedelta(hours=1),
    otp_wait_seconds=0,
)


class Signing:
    """The service's core as bootstrap composes it (``kyso_signing.core``), on the in-memory store and a fake
    clock, webhooks going to a fake relying party; plus the test helpers that make events."""

    def __init__(self, store: MemoryStore, clock: FakeClock) -> None:
        self.receiver = Receiver()
        self.core = core = build_core(store, clock, CONFIG, post=self.receiver.post)
        self.authority, self.crls, self.stamper = core.authority, core.crls, core.stamper
        self.responder, self.papers, self.custody = core.responder, core.papers, core.custody
        self.remote, self.acceptance, self.pdfs = core.remote, core.acceptance, core.pdfs
        self.registry, self.registration, self.issuance = core.registry, core.registration, core.issuance
        self.contracts, self.activation, self.certificates = core.contracts, core.activation, core.certificates
        self.lifecycle, self.pin, self.clients = core.lifecycle, core.pin, core.clients
        self.webhooks, self.audit, self.csc = core.webhooks, core.audit, core.csc
        self.store, self.clock = store, clock

    async def start(self) -> None:
        await self.core.start()

    def order(self, amount: int = 800_000, order_id: str = "order-1") -> OrderPlaced:
        return order_placed(order_id, ALICE.account_id, amount, self.clock.now(), full_name="Nguyễn Thị Bình", years=2)

    def paid(self, amount: int = 800_000, order_id: str = "order-1") -> PaymentConfirmed:
        return PaymentConfirmed(
            payment_id="pay-1",
            order_id=order_id,
            account_id=ALICE.account_id,
            amount_vnd=amount,
            provider="vnpay",
            provider_transaction_no="1",
            confirmed_at=self.clock.now(),
        )

    def consent(
        self, contract_id: str, binding: str, account: str = ALICE.account_id, ch: str = "ch-1"
    ) -> SmsOtpVerified:
        return SmsOtpVerified(
            challenge_id=ch,
            purpose=OtpPurpose.CONTRACT_CONSENT,
            subject=contract_id,
            account_id=account,
            phone="+84912345678",
            binding_sha256=binding,
            verified_at=self.clock.now(),
        )


@pytest.fixture
async def signing(store: MemoryStore, clock: FakeClock) -> Signing:
    s = Signing(store, clock)
    await s.start()
    return s


async def test_the_contract_waits_for_both_order_and_payment_in_either_order(signing: Signing) -> None:
    c = signing.contracts
    await c.when_payment_confirmed_prepare_contract(delivered(signing.paid(), signing.clock))
    with pytest.raises(Exception, match="not found"):
        await c.for_order(ALICE, "order-1")
    await c.when_order_placed_remember_order(delivered(signing.order(), signing.clock))
    contract = await c.for_order(ALICE, "order-1")
    assert contract.status == "awaiting_consent" and not contract.signed
    assert "Nguyễn Thị Bình" in contract.text and "800.000 đồng" in contract.text


async def test_a_payment_for_another_amount_stops_with_an_event_and_no_contract(signing: Signing) -> None:
    c, store = signing.contracts, signing.store
    await c.when_order_placed_remember_order(delivered(signing.order(800_000), signing.clock))
    paid = delivered(signing.paid(700_000), signing.clock)
    await c.when_payment_confirmed_prepare_contract(paid)
    [mismatch] = store.of_type(PaymentAmountMismatch)
    assert (mismatch.data.paid_vnd, mismatch.data.order_vnd) == (700_000, 800_000)
    assert mismatch.causationid == paid.id
    doc = await c.certs.find_one({"order_id": "order-1"})
    assert doc is not None and doc["status"] == "amount_mismatch" and "contract" not in doc


async def _prepared(signing: Signing) -> tuple[str, str]:
    c = signing.contracts
    await c.when_order_placed_remember_order(delivered(signing.order(), signing.clock))
    await c.when_payment_confirmed_prepare_contract(delivered(signing.paid(), signing.clock))
    contract = await c.for_order(ALICE, "order-1")
    return contract.contract_id, contract.sha256


async def test_the_contract_pdf_is_drawn_up_once_when_first_opened(signing: Signing) -> None:
    c = signing.contracts
    await c.when_order_placed_remember_order(delivered(signing.order(), signing.clock))
    await c.when_payment_confirmed_prepare_contract(delivered(signing.paid(), signing.clock))
    doc = await c.certs.find_one({"order_id": "order-1"})
    assert doc is not None and doc["status"] == "awaiting_consent" and "sha256" not in doc["contract"]
    assert await signing.store.collection("documents").count({}) == 0  # a paid order renders nothing yet
    views = await asyncio.gather(*(c.for_order(ALICE, "order-1") for _ in range(4)))
    assert len({v.sha256 for v in views}) == 1 and views[0].text
    assert await c.pdf(ALICE, views[0].contract_id, sealed=False) == await signing.papers.get(views[0].sha256)
    # consent bound to what was shown issues; nothing else was ever pointed at
    consent = delivered(signing.consent(views[0].contract_id, views[0].sha256), signing.clock)
    await c.when_sms_otp_verified_sign_contract(consent)
    assert (await c.certs.find_one({"order_id": "order-1"}) or {})["status"] == "pending_activation"


async def test_a_consent_code_bound_to_another_hash_is_a_visible_rejection_the_user_can_retry(signing: Signing) -> None:
    c, store = signing.contracts, signing.store
    contract_id, sha = await _prepared(signing)
    wrong = delivered(signing.consent(contract_id, "f" * 64, ch="ch-wrong"), signing.clock)
    await c.when_sms_otp_verified_sign_contract(wrong)
    await c.when_sms_otp_verified_sign_contract(wrong)  # a duplicate delivery: one rejection
    [rejected] = store.of_type(ConsentRejected)
    assert rejected.data.reason == "bound_to_other_document" and rejected.causationid == wrong.id
    view = await c.for_order(ALICE, "order-1")
    assert view.status == "awaiting_consent" and [r.reason for r in view.consent_rejections] == [
        "bound_to_other_document"
    ]
    stranger = delivered(signing.consent(contract_id, sha, account="acct-mallory", ch="ch-m"), signing.clock)
    await c.when_sms_otp_verified_sign_contract(stranger)
    assert store.of_type(ConsentRejected)[-1].data.reason == "other_account"
    assert not store.of_type(ContractSigned)
    await c.when_sms_otp_verified_sign_contract(delivered(signing.consent(contract_id, sha), signing.clock))
    assert len(store.of_type(ContractSigned)) == 1 and len(store.of_type(CertIssued)) == 1


async def test_consent_issues_one_certificate_even_when_delivered_twice(signing: Signing) -> None:
    c, store = signing.contracts, signing.store
    contract_id, sha = await _prepared(signing)
    ok = delivered(signing.consent(contract_id, sha), signing.clock)
    await c.when_sms_otp_verified_sign_contract(ok)
    await c.when_sms_otp_verified_sign_contract(ok)
    [signed] = store.of_type(ContractSigned)
    [issued] = store.of_type(CertIssued)
    assert signed.causationid == ok.id and issued.causationid == signed.id
    cert = x509.load_pem_x509_certificate(issued.data.certificate_pem.encode())
    # calendar years; RFC 5280 counts notAfter as valid, so the last second is one before the anniversary
    assert cert.not_valid_after_utc == pki.add_years(cert.not_valid_before_utc, 2) - timedelta(seconds=1)
    assert cert.serial_number == int(issued.data.serial_number, 16)
    [recorded] = await c.certs.find({"serial_number": issued.data.serial_number})
    assert recorded["status"] == "pending_activation"


async def test_the_serial_is_recorded_before_signing_and_a_crash_resumes_with_it(
    signing: Signing, monkeypatch: pytest.MonkeyPatch
) -> None:
    c, store = signing.contracts, signing.store
    contract_id, sha = await _prepared(signing)
    ok = delivered(signing.consent(contract_id, sha), signing.clock)
    real = profiles.subscriber
    signed_then_lost: list[x509.Certificate] = []

    def crash(*args: object, **kw: object) -> object:
        signed_then_lost.append(real(*args, **kw))  # type: ignore[arg-type]
        raise RuntimeError("process killed after signing, before storing")

    monkeypatch.setattr(profiles, "subscriber", crash)
    with pytest.raises(RuntimeError):
        await c.when_sms_otp_verified_sign_contract(ok)
    doc = await c.certs.find_one({"order_id": "order-1"})
    assert doc is not None and doc["status"] == "issuing" and not store.of_type(CertIssued)
    reserved = doc["serial_number"]  # known before anything was signed
    monkeypatch.setattr(profiles, "subscriber", real)
    await c.when_sms_otp_verified_sign_contract(ok)  # the event comes back after the crash
    [issued] = store.of_type(CertIssued)
    assert issued.data.serial_number == reserved
    # the certificate signed before the crash is the stored one, but for its signature: same serial, key, validity
    lost, stored = signed_then_lost[0], x509.load_pem_x509_certificate(issued.data.certificate_pem.encode())
    assert lost.tbs_certificate_bytes == stored.tbs_certificate_bytes


async def test_two_certificates_never_hold_one_serial(signing: Signing, monkeypatch: pytest.MonkeyPatch) -> None:
    c, store = signing.contracts, signing.store
    contract_id, sha = await _prepared(signing)
    await c.when_sms_otp_verified_sign_contract(delivered(signing.consent(contract_id, sha), signing.clock))
    [first] = store.of_type(CertIssued)
    await c.when_order_placed_remember_order(delivered(signing.order(order_id="order-2"), signing.clock))
    await c.when_payment_confirmed_prepare_contract(delivered(signing.paid(order_id="order-2"), signing.clock))
    second = await c.for_order(ALICE, "order-2")
    draws = iter([int(first.data.serial_number, 16), 0x5E41A1])  # the first draw collides
    monkeypatch.setattr(pki, "new_serial", lambda: next(draws))
    await c.when_sms_otp_verified_sign_contract(
        delivered(signing.consent(second.contract_id, second.sha256, ch="ch-2"), signing.clock)
    )
    assert store.of_type(CertIssued)[-1].data.serial_number == "5e41a1"


async def test_activation_needs_the_owner_and_a_good_pin_and_draws_up_the_record(signing: Signing) -> None:
    c, a, store = signing.contracts, signing.activation, signing.store
    contract_id, sha = await _prepared(signing)
    await c.when_sms_otp_verified_sign_contract(delivered(signing.consent(contract_id, sha), signing.clock))
    [issued] = store.of_type(CertIssued)
    cert_id = issued.data.certificate_id
    with pytest.raises(NotFound):  # the record is drawn up at activation (it names the activation time)
        await a.acceptance_record(ALICE, cert_id)
    with pytest.raises(Invalid):
        await a.activate(ALICE, cert_id, "123456")
    with pytest.raises(Forbidden):  # not even an operator may set a subscriber's signing PIN
        await a.activate(Principal("op", frozenset({"operator"})), cert_id, "482915")
    assert store.of_type(CertActivated) == []
    done = await a.activate(ALICE, cert_id, "482915")
    assert done.status == "active" and done.acceptance_signing_request_id
    with pytest.raises(Conflict):
        await a.activate(ALICE, cert_id, "482915")
    [activated] = store.of_type(CertActivated)
    record = await a.acceptance_record(ALICE, cert_id)
    assert activated.data.acceptance_record_sha256 == record.sha256 == done.acceptance_record_sha256
    pdf = await signing.acceptance.file(ALICE, cert_id, signed=False)
    assert pdf.startswith(b"%PDF-") and hashlib.sha256(pdf).hexdigest() == record.sha256
    assert record.signing_request_id == done.acceptance_signing_request_id and not record.signed


async def test_a_reader_waiting_for_the_contract_gets_it_as_soon_as_it_is_drawn_up(signing: Signing) -> None:
    import asyncio
    import time

    c = signing.contracts
    await c.when_order_placed_remember_order(delivered(signing.order(), signing.clock))
    waiting = asyncio.create_task(c.for_order(ALICE, "order-1", wait_seconds=10))
    await asyncio.sleep(0.05)
    assert not waiting.done()
    started = time.perf_counter()
    await c.when_payment_confirmed_prepare_contract(delivered(signing.paid(), signing.clock))
    assert (await waiting).status == "awaiting_consent"
    assert time.perf_counter() - started < 0.5  # woken by the change, not by the next re-read


async def test_a_closed_order_gets_no_contract_and_a_late_consent_issues_nothing(signing: Signing) -> None:
    from kyso_contracts import OrderCancelled

    c, store = signing.contracts, signing.store
    contract_id, sha = await _prepared(signing)
    closed = OrderCancelled(
        order_id="order-1", account_id=ALICE.account_id, amount_vnd=800_000, cancelled_at=signing.clock.now()
    )
    await c.when_order_closed_stop(delivered(closed, signing.clock))
    await c.when_order_closed_stop(delivered(closed, signing.clock))
    await c.when_sms_otp_verified_sign_contract(delivered(signing.consent(contract_id, sha), signing.clock))
    assert store.of_type(CertIssued) == []
    doc = await c.certs.find_one({"order_id": "order-1"})
    assert doc is not None and doc["status"] == "cancelled"
    # closed before the order and its payment reached this service: nothing is drawn up later either
    early = closed.model_copy(update={"order_id": "order-2"})
    await c.when_order_closed_stop(delivered(early, signing.clock))
    await c.when_order_placed_remember_order(delivered(signing.order(order_id="order-2"), signing.clock))
    await c.when_payment_confirmed_prepare_contract(delivered(signing.paid(order_id="order-2"), signing.clock))
    later = await c.certs.find_one({"order_id": "order-2"})
    assert later is not None and later["status"] == "cancelled" and "contract" not in later
    # each closing stopped issuance exactly once (payment refunds on it); nothing else was announced
    stops = [(e.data.order_id, e.data.reason) for e in store.of_type(IssuanceStopped)]
    assert stops == [("order-1", "cancelled"), ("order-2", "cancelled")]


async def test_a_cancellation_after_consent_changes_nothing(signing: Signing) -> None:
    from kyso_contracts import OrderCancelled

    c, store = signing.contracts, signing.store
    contract_id, sha = await _prepared(signing)
    await c.when_sms_otp_verified_sign_contract(delivered(signing.consent(contract_id, sha), signing.clock))
    closed = OrderCancelled(
        order_id="order-1",
        account_id=ALICE.account_id,
        amount_vnd=800_000,
        cancelled_at=signing.clock.now(),
        after_payment=True,
    )
    await c.when_order_closed_stop(delivered(closed, signing.clock))
    assert store.of_type(IssuanceStopped) == [] and len(store.of_type(CertIssued)) == 1


async def test_an_issuance_the_ca_refuses_fails_for_good_and_destroys_the_key(signing: Signing) -> None:
    c, store = signing.contracts, signing.store
    # an organisation certificate without its organisation: the profile refuses to name it
    order = signing.order().model_copy(update={"certificate_kind": "organisation", "organisation": None})
    await c.when_order_placed_remember_order(delivered(order, signing.clock))
    await c.when_payment_confirmed_prepare_contract(delivered(signing.paid(), signing.clock))
    contract = await c.for_order(ALICE, "order-1")
    consent = delivered(signing.consent(contract.contract_id, contract.sha256), signing.clock)
    await c.when_sms_otp_verified_sign_contract(consent)
    await c.when_sms_otp_verified_sign_contract(consent)  # redelivered: decided already
    doc = await c.certs.find_one({"order_id": "order-1"})
    assert doc is not None and doc["status"] == "failed" and "key" not in doc and doc["failure"] == "ValueError"
    [stop] = store.of_type(IssuanceStopped)
    assert stop.data.reason == "issuance_failed" and store.of_type(CertIssued) == []
