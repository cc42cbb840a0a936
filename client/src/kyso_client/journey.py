"""The whole SmartCA journey (guide steps 1–6) plus a first SmartOTP enrolment, as a citizen walks it.

Every step goes over HTTP to the real services; the SMS code is read from the development inbox, as
the user would read it on their phone. Run it with ``python -m kyso_client.journey`` against running
services, or through ``deploy/demo.py`` which starts everything first.
"""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from kyso_contracts import parse_event, topics

from . import vneid
from .api import Endpoints, KysoApi, eventually
from .device import SoftToken

Printer = Callable[[str], None]


@dataclass
class JourneyResult:
    correlation_id: str
    registration_id: str = ""
    account_id: str = ""
    phone: str = ""
    order_id: str = ""
    payment_id: str = ""
    certificate_id: str = ""
    token_id: str = ""
    final_order: dict[str, Any] = field(default_factory=dict)
    certificate_pem: str = ""
    ca_pem: str = ""
    acceptance_record: bytes = b""
    contract_id: str = ""
    acceptance_signature: bytes = b""
    soft_token: SoftToken | None = None


class EventWatcher:
    """Reads every kyso topic from the beginning and keeps the raw records (for printing and checks)."""

    def __init__(self, bootstrap: str, printer: Printer | None = None, correlation_id: str | None = None) -> None:
        self.bootstrap = bootstrap
        self.printer = printer
        self.correlation_id = correlation_id
        self.records: list[tuple[str, bytes | None, bytes]] = []
        self._task: asyncio.Task[None] | None = None
        self._consumer: AIOKafkaConsumer | None = None

    async def start(self) -> None:
        self._consumer = AIOKafkaConsumer(
            *topics.ALL,
            bootstrap_servers=self.bootstrap,
            group_id=None,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        await self._consumer.start()
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        assert self._consumer is not None
        async for rec in self._consumer:
            self.records.append((rec.topic, rec.key, rec.value))
            if self.printer:
                try:
                    doc = json.loads(rec.value)
                except ValueError:
                    continue
                if self.correlation_id and doc.get("correlationid") != self.correlation_id:
                    continue
                self.printer(f"      ⇢ event {doc.get('type')}  key={rec.key.decode() if rec.key else '-'}")

    def keyed_all(self) -> list[tuple[str, bytes | None, dict[str, Any]]]:
        """Every record that is a JSON object, as (topic, key, document)."""
        out = []
        for t, k, value in self.records:
            try:
                doc = json.loads(value)
            except ValueError:
                continue
            if isinstance(doc, dict):
                out.append((t, k, doc))
        return out

    def keyed(self, correlation_id: str) -> list[tuple[str, bytes | None, dict[str, Any]]]:
        return [r for r in self.keyed_all() if r[2].get("correlationid") == correlation_id]

    def events(self, correlation_id: str) -> list[dict[str, Any]]:
        return [doc for _, _, doc in self.keyed(correlation_id)]

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):  # noqa: S110 - shutting down
                pass
        if self._consumer:
            await self._consumer.stop()


async def open_account(
    api: KysoApi,
    full_name: str,
    password: str,
    date_of_birth: str = "1990-01-01",
    *,
    citizen_id: str | None = None,
    phone: str | None = None,
) -> Account:
    """Steps 1–3 for a new citizen: VNeID hand-over, confirmation, phone by SMS OTP, account (signed in)."""
    ident = vneid.identity(citizen_id or vneid.random_citizen_id(), full_name, date_of_birth)
    reg = (await api.vneid_register(vneid.sign(ident)))["registration_id"]
    await api.confirm_registration(reg)
    phone = phone or vneid.random_phone()
    ch = await api.sms_challenge("phone_verification", reg, phone=phone)
    await api.verify_sms(ch["challenge_id"], await api.dev_sms_code(phone, ch["challenge_id"]))
    await eventually(lambda: api.registration(reg, verified_phone=phone), lambda g: phone in g["verified_phones"])
    acct = await api.create_account(reg, phone, f"k{uuid.uuid4().hex[:8]}@example.vn", password)
    return Account(registration_id=reg, account_id=acct["account_id"], phone=phone)


@dataclass(frozen=True)
class Account:
    registration_id: str
    account_id: str
    phone: str


def new_correlation_id() -> str:
    return f"journey-{uuid.uuid4().hex}"


async def walk(
    endpoints: Endpoints,
    say: Printer = print,
    *,
    pin: str = "482915",
    smartotp_pin: str = "730514",
    package_code: str = "PERSONAL_1Y",
    correlation_id: str | None = None,
    after: Callable[[str], Awaitable[None]] | None = None,
) -> JourneyResult:
    """Walk the journey; ``after(step)`` runs after the steps "order_placed" and "paid" (fault injection)."""
    cid = correlation_id or new_correlation_id()
    r = JourneyResult(correlation_id=cid)
    api = KysoApi(endpoints, correlation_id=cid)
    try:
        # Step 1 — VNeID hands the citizen's level-2 identity over, signed.
        ident = vneid.identity(
            vneid.random_citizen_id(), "Nguyễn Thị Minh Khai", "1990-05-19", province="Hà Nội", locality="Ba Đình"
        )
        reg = await api.vneid_register(vneid.sign(ident))
        r.registration_id = reg["registration_id"]
        say(f"1. VNeID → registration: identity of {ident['full_name']} accepted (registration {r.registration_id})")

        # Step 2 — the citizen confirms the data.
        await api.confirm_registration(r.registration_id)
        say("2. citizen confirmed the registration data, handed over to the kyso app")

        # Step 3 — phone verified by SMS OTP, then email and password.
        r.phone = vneid.random_phone()
        ch = await api.sms_challenge("phone_verification", r.registration_id, phone=r.phone)
        code = await api.dev_sms_code(r.phone, ch["challenge_id"])
        await api.verify_sms(ch["challenge_id"], code)
        say(f"3. phone {r.phone} verified with SMS OTP {code}")
        await eventually(
            lambda: api.registration(r.registration_id, verified_phone=r.phone),
            lambda g: r.phone in g["verified_phones"],
        )
        acct = await api.create_account(r.registration_id, r.phone, "minhkhai@example.vn", "Ky-so an toan 2025!")
        r.account_id = acct["account_id"]
        say(f"   account {r.account_id} created (email, password), signed in")

        # SmartOTP soft token: terms → SMS OTP → activation code → device → first code.
        ch = await eventually(lambda: api.sms_challenge("smartotp_enrolment", r.account_id, account_id=r.account_id))
        await api.verify_sms(ch["challenge_id"], await api.dev_sms_code(r.phone, ch["challenge_id"]))
        enrol = await api.smartotp_enrol(r.account_id, ch["challenge_id"])
        device = await api.smartotp_activate(
            enrol["token_id"], enrol["activation_code"], f"device-{uuid.uuid4().hex[:12]}"
        )
        r.token_id = device["token_id"]
        r.soft_token = SoftToken.from_activation(device, smartotp_pin, smartotp_pin)  # the PIN stays here
        await api.smartotp_verify(r.token_id, r.soft_token.code(smartotp_pin))
        say(f"   SmartOTP token {r.token_id} enrolled on the device (first code verified)")

        # Steps 4–5 — choose a package, pay, sign the service contract, activate the certificate.
        bought = await buy_certificate(api, r.account_id, r.phone, package_code, pin, say=say, after=after)
        r.order_id, r.payment_id, r.certificate_id = bought.order_id, bought.payment_id, bought.certificate_id
        r.acceptance_record, r.acceptance_signature = bought.acceptance_record, bought.acceptance_signature
        r.contract_id = bought.contract_id

        # Step 6 — the status, as the kyso app and VNeID see it.
        r.final_order = await api.order_reaching(r.order_id, "active")
        cert = await api.certificate(r.certificate_id)
        r.certificate_pem, r.ca_pem = cert["certificate_pem"], cert["ca_certificate_pem"]
        verify_certificate_and_signature(r)
        say(
            f"6. status: {r.final_order['status']} ({r.final_order['status_vi']}); certificate chains to the kyso CA "
            "and verifies the acceptance signature"
        )
        return r
    finally:
        await api.aclose()


@dataclass
class Bought:
    order_id: str
    payment_id: str
    certificate_id: str
    acceptance_record: bytes
    acceptance_signature: bytes
    contract_id: str = ""


async def buy_certificate(
    api: KysoApi,
    account_id: str,
    phone: str,
    package_code: str,
    pin: str,
    *,
    key_algorithm: str | None = None,
    renews_certificate_id: str | None = None,
    say: Printer = print,
    after: Callable[[str], Awaitable[None]] | None = None,
) -> Bought:
    """Steps 4–5 for a signed-in account: order (or renew), pay, consent to the contract, activate."""
    # Step 4 — choose a package, pay, sign the service contract.
    pkgs = (await api.packages())["packages"]
    pkg = next(p for p in pkgs if p["code"] == package_code)
    order = await api.place_order(pkg["code"], key_algorithm=key_algorithm, renews_certificate_id=renews_certificate_id)
    order_id = order["order_id"]
    say(f"4. order {order_id}: {pkg['name_vi']} — {pkg['price_vnd']:,} đồng".replace(",", "."))
    return await pay_and_activate(api, account_id, phone, order_id, pin, say=say, after=after)


async def pay_and_activate(
    api: KysoApi,
    account_id: str,
    phone: str,
    order_id: str,
    pin: str,
    *,
    say: Printer = print,
    after: Callable[[str], Awaitable[None]] | None = None,
) -> Bought:
    """Steps 4–5 for a placed order: pay, consent to the contract, activate, sign the acceptance record."""
    if after:
        await after("order_placed")
    payment = await eventually(lambda: api.payment_for_order(order_id, wait=20), timeout=60)
    checkout = await api.checkout(payment["payment_id"])
    paid = await api.sandbox_pay(checkout["payment_url"])
    say(f"   paid through the sandbox gateway (IPN answer {paid['ipn_response']['RspCode']})")
    if after:
        await after("paid")
    contract = await eventually(lambda: api.contract_for_order(order_id, wait=20), timeout=60)
    certificate_id = contract["certificate_id"]
    ch = await api.sms_challenge(
        "contract_consent", contract["contract_id"], account_id=account_id, binding_sha256=contract["sha256"]
    )
    await api.verify_sms(ch["challenge_id"], await api.dev_sms_code(phone, ch["challenge_id"]))
    say(f"   contract {contract['contract_id']} (sha256 {contract['sha256'][:16]}…) signed with an OTP bound to it")

    # Step 5 — the certificate waits for activation: set a PIN, sign the acceptance record.
    pending = await api.order_reaching(order_id, "pending_activation")
    say(f"5. certificate {pending['certificate']['serial_number']} is '{pending['status_vi']}'")
    activated = await api.activate_certificate(certificate_id, pin)
    record = await api.acceptance_record(certificate_id)
    unsigned = await api.download(record["pdf_url"])
    say("   PIN set; the acceptance record (PDF) is drawn up and waits for the subscriber's signature")
    await api.confirm_signing_by_sms(activated["acceptance_signing_request_id"], account_id, phone, pin)
    signed = await eventually(lambda: api.acceptance_record(certificate_id), lambda r: bool(r["signed"]), timeout=60)
    say(f"   acceptance record signed in the app (SMS code + PIN): PAdES, sha256 {signed['signed_sha256'][:16]}…")
    return Bought(
        order_id,
        payment["payment_id"],
        certificate_id,
        unsigned,
        base64.b64decode(activated["acceptance_signature_b64"]),
        contract_id=contract["contract_id"],
    )


def verify_certificate_and_signature(r: JourneyResult) -> None:
    cert = x509.load_pem_x509_certificate(r.certificate_pem.encode())
    ca = x509.load_pem_x509_certificate(r.ca_pem.encode())
    cert.verify_directly_issued_by(ca)
    now = datetime.now(UTC)
    if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
        raise ValueError("certificate not valid now")
    pub = cert.public_key()
    assert isinstance(pub, ec.EllipticCurvePublicKey)
    pub.verify(r.acceptance_signature, r.acceptance_record, ec.ECDSA(hashes.SHA256()))


REQUIRED_EVENTS = (
    "vn.kyso.registration.account_created.v1",
    "vn.kyso.otp.enrolled.v1",
    "vn.kyso.registration.order_placed.v1",
    "vn.kyso.payment.confirmed.v1",
    "vn.kyso.signing.contract_signed.v1",
    "vn.kyso.signing.contract_sealed.v1",
    "vn.kyso.signing.cert_issued.v1",
    "vn.kyso.signing.cert_activated.v1",
    "vn.kyso.signing.acceptance_record_signed.v1",
)


def check_events(watcher: EventWatcher, correlation_id: str) -> dict[str, int]:
    """Every required event of this journey: published exactly once, a valid CloudEvent with nothing its version
    does not declare (kyso writes strictly), keyed by its subject."""
    counts: dict[str, int] = dict.fromkeys(REQUIRED_EVENTS, 0)
    for _topic, key, doc in watcher.keyed(correlation_id):
        event = parse_event(doc, strict=True)
        if key is None or key.decode() != event.subject:
            raise AssertionError(f"{event.type} keyed {key!r}, subject {event.subject}")
        if event.type in counts:
            counts[event.type] += 1
    return counts


async def _main() -> None:
    import argparse

    p = argparse.ArgumentParser(description="Walk the kyso journey against running services")
    for name, port in (("registration", 8001), ("payment", 8002), ("signing", 8003), ("otp", 8004)):
        p.add_argument(f"--{name}", default=f"http://127.0.0.1:{port}")
    a = p.parse_args()
    await walk(Endpoints(a.registration, a.payment, a.signing, a.otp))


if __name__ == "__main__":
    asyncio.run(_main())
