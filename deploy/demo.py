"""Bring the whole kyso system up on this machine and walk one citizen's journey end to end (then an
organisation's, opened by a sales agent).

Starts a real Kafka broker and FerretDB (provisioned and cached on first use), the four services as
separate processes, walks the journey over HTTP while printing every step and every event, checks
the result, and stops everything it started.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import sys
import time

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from kyso_client import vneid
from kyso_client.api import Endpoints, KysoApi, eventually
from kyso_client.integrator import register_integrator
from kyso_client.journey import (
    EventWatcher,
    JourneyResult,
    check_events,
    new_correlation_id,
    open_account,
    pay_and_activate,
    walk,
)
from kyso_client.pdf import validate_pdf
from kyso_client.relying_party import revocation_status
from kyso_contracts.transactions import DocumentsTransaction
from stack import Stack

PASSWORD = "Ky-so an toan 2025!"  # what walk() creates the account with
SIGNING_PIN, SMARTOTP_PIN = "482915", "730514"  # walk()'s defaults


def say(line: str) -> None:
    print(line, flush=True)


async def remote_signing(stack: Stack, endpoints: Endpoints, result: JourneyResult, cid: str) -> None:
    """An e-invoice portal asks the new subscriber to sign three invoices; the subscriber confirms in the
    app with a SmartOTP code computed over exactly those digests and the signing PIN."""
    phone = vneid.random_phone()
    await asyncio.to_thread(stack.create_operator, phone, PASSWORD)
    op = KysoApi(endpoints, correlation_id=cid)
    await op.login(phone, PASSWORD)
    rp, _ = await register_integrator(op, endpoints.signing, "Cổng hóa đơn điện tử (demo)", correlation_id=cid)
    await op.aclose()
    invoices = {f"hoa-don-{i:03}.xml": hashlib.sha256(f"<HDon so='{i}'/>".encode()).digest() for i in (1, 2, 3)}
    created = await rp.submit(list(invoices.items()), description="Ký 3 hóa đơn", user_id=result.account_id)
    say(f"7. an e-invoice portal (OAuth client credentials) asks for 3 signatures: request {created['request_id']}")
    api = KysoApi(endpoints, correlation_id=cid)
    try:
        await api.login(result.phone, PASSWORD)
        assert result.soft_token is not None
        tx = DocumentsTransaction(document_hashes=[d.hex() for d in invoices.values()])
        code = result.soft_token.transaction_code(SMARTOTP_PIN, tx, device_time=time.time() + 30)
        await api.smartotp_confirm_documents(result.token_id, code, tx.document_hashes, created["request_id"])
        await api.confirm_signing(created["request_id"], SIGNING_PIN)
        done = await rp.request(created["request_id"])
        cert = x509.load_pem_x509_certificate(result.certificate_pem.encode())
        public = cert.public_key()
        assert isinstance(public, ec.EllipticCurvePublicKey)
        for entry in done["signatures"]:
            sig = base64.b64decode(entry["signature"])
            public.verify(sig, invoices[entry["label"]], ec.ECDSA(Prehashed(hashes.SHA256())))
        say(
            f"   confirmed in the app: SmartOTP code {code} over the 3 digests + the signing PIN; "
            f"status {done['status']}, {len(done['signatures'])} signatures verify against the certificate"
        )
    finally:
        await api.aclose()
        await rp.aclose()


async def papers(stack: Stack, endpoints: Endpoints, result: JourneyResult, cid: str) -> None:
    """The two PDFs the subscriber keeps, downloaded as the app does, checked by pyHanko's validator with
    only what kyso's PKI endpoints serve, and written next to the logs."""
    api = KysoApi(endpoints, correlation_id=cid)
    out = stack.run_dir / "documents"
    out.mkdir(parents=True, exist_ok=True)
    try:
        await api.login(result.phone, PASSWORD)
        contract = await api.contract_for_order(result.order_id, wait=20, sealed=True)
        record = await api.acceptance_record(result.certificate_id)
        files = {
            "hop-dong-dich-vu.pdf": await api.download(contract["sealed_pdf_url"]),
            "bien-ban-nghiem-thu.pdf": await api.download(record["signed_pdf_url"]),
        }
        for name, data in files.items():
            check = await validate_pdf(data, endpoints.signing)
            (out / name).write_bytes(data)
            say(f"   {out / name}: {len(data):,} bytes, {check.level}, signed by {', '.join(check.signers)}, "
                f"pyHanko: {check.summaries[0]}")  # fmt: skip
    finally:
        await api.aclose()


async def lifecycle(endpoints: Endpoints, result: JourneyResult, cid: str) -> None:
    """After the journey: a relying party checks the certificate, the subscriber suspends it with an SMS
    code bound to the request, and the relying party sees the change."""
    status = await revocation_status(result.certificate_pem, result.ca_pem)
    say(f"8. a relying party asks OCSP: {status.ocsp}; CRL #{status.crl_number} lists it: {status.crl_lists_it}")
    api = KysoApi(endpoints, correlation_id=cid)
    try:
        await api.login(result.phone, PASSWORD)
        request = await api.request_lifecycle_change(result.certificate_id, "suspend")
        await api.confirm_lifecycle_change(request, result.account_id, result.phone)
        say(f"9. the subscriber suspends it (fresh password + SMS code bound to sha256 {request['sha256'][:16]}…)")
        order = await api.order_reaching(result.order_id, "suspended", timeout=20)
        status = await revocation_status(result.certificate_pem, result.ca_pem)
        say(
            f"   order '{order['status_vi']}'; OCSP: {status.ocsp} ({status.reason}); "
            f"CRL #{status.crl_number} lists it: {status.crl_lists_it}"
        )
    finally:
        await api.aclose()


async def organisation(stack: Stack, endpoints: Endpoints) -> None:
    """A sales agent opens an organisation registration; the authorised person, invited by SMS, proves
    who they are through VNeID, confirms, pays for the organisation and activates its certificate."""
    cid = new_correlation_id()
    phone = vneid.random_phone()
    await asyncio.to_thread(stack.create_operator, phone, PASSWORD, ("sales_agent",))
    agent, person = KysoApi(endpoints, correlation_id=cid), KysoApi(endpoints, correlation_id=cid)
    try:
        await agent.login(phone, PASSWORD)
        citizen_id, person_phone = vneid.random_citizen_id(), vneid.random_phone()
        opened = await agent.open_organisation_registration(
            {
                "name": "Công ty TNHH Hóa đơn Sáng",
                "tax_code": "0100109106",
                "address": "1 Tràng Tiền, Hoàn Kiếm, Hà Nội",
                "province": "Hà Nội",
                "legal_representative": "Trần Văn Sáng",
            },
            {"full_name": "Đỗ Thị Lan", "citizen_id": citizen_id, "phone": person_phone},
            ["ORGANISATION_1Y"],
        )
        reg_id = opened["organisation_registration_id"]
        say(f"10. a sales agent opens an organisation registration {reg_id} (MST 0100109106, check digit valid)")
        text = await eventually(lambda: person.dev_sms_text(person_phone, reg_id), lambda t: t is not None)
        say(f"    the authorised person's phone receives: {text}")
        acct = await open_account(
            person, "Đỗ Thị Lan", PASSWORD, "1988-08-08", citizen_id=citizen_id, phone=person_phone
        )
        confirmed = await person.confirm_organisation_registration(reg_id)
        order_id = confirmed["orders"][0]["order_id"]
        say(f"    they prove who they are through VNeID, make an account and confirm: order {order_id}")
        await eventually(lambda: person.otp_methods(acct.account_id), lambda m: m["methods"]["sms"]["available"])
        bought = await pay_and_activate(
            person, acct.account_id, person_phone, order_id, SIGNING_PIN, say=lambda line: say("   " + line)
        )
        cert = await person.certificate(bought.certificate_id)
        subject = x509.load_pem_x509_certificate(cert["certificate_pem"].encode()).subject.rfc4514_string()
        say(f"    the organisation certificate is active: {subject}")
    finally:
        await agent.aclose()
        await person.aclose()


async def run(stack: Stack) -> int:
    endpoints = Endpoints(*(stack.url(n) for n in ("registration", "payment", "signing", "otp")))
    cid = new_correlation_id()
    watcher = EventWatcher(stack.kafka_bootstrap, printer=say, correlation_id=cid)
    await watcher.start()
    try:
        result = await walk(endpoints, say, correlation_id=cid)
        say("   the contract (sealed by kyso) and the acceptance record (signed by the subscriber), as PDF:")
        await papers(stack, endpoints, result, cid)
        await remote_signing(stack, endpoints, result, cid)
        await lifecycle(endpoints, result, cid)
        await organisation(stack, endpoints)
        await asyncio.sleep(2.0)  # let the last events arrive in the printout
        counts = check_events(watcher, result.correlation_id)
    finally:
        await watcher.stop()
    say("\nevents of this journey (each must be published exactly once):")
    for etype, n in counts.items():
        say(f"  {'ok ' if n == 1 else 'BAD'} {n}× {etype}")
    return 0 if all(n == 1 for n in counts.values()) else 1


def main() -> int:
    t0 = time.monotonic()
    say("starting Kafka, FerretDB and the four services (first run provisions them: a few minutes)…")
    stack = Stack()
    try:
        stack.start()
        say(f"up in {time.monotonic() - t0:.1f}s — " + ", ".join(f"{n} {s.url}" for n, s in stack.services.items()))
        say(f"logs: {stack.run_dir}\n")
        return asyncio.run(run(stack))
    finally:
        stack.stop()


if __name__ == "__main__":
    sys.exit(main())
