"""Activation: the subscriber sets a signing PIN; the acceptance record is drawn up (PDF), the new key
signs its bytes once as proof of possession, and kyso asks the subscriber — through remote signing,
confirmed in the app like any other document — for the PAdES signature the record keeps."""

from __future__ import annotations

import base64

from kyso_kit.auth import Action, Principal
from kyso_kit.clock import Clock
from kyso_kit.errors import Conflict, Invalid, not_found
from kyso_kit.store import Doc, Store
from kyso_signing.credentials import domain, keywrap
from kyso_signing.credentials.custody import KeyCustody
from kyso_signing.credentials.domain import CertificateStatus as S
from kyso_signing.credentials.records import certificates, issued_for
from kyso_signing.credentials.views import AcceptanceRecordView, ActivationView
from kyso_signing.flows.acceptance import Acceptance
from kyso_signing.pki import keys as pki
from kyso_signing.pki.authority import Authority


def _not_pending() -> Conflict:
    return Conflict(
        "not_pending_activation",
        "The certificate is not waiting for activation",
        "Chứng thư số không ở trạng thái chờ kích hoạt",
    )


class Activation:
    def __init__(
        self, store: Store, authority: Authority, custody: KeyCustody, clock: Clock, acceptance: Acceptance
    ) -> None:
        self.acceptance = acceptance
        self.certs = certificates(store)
        self.authority = authority
        self.custody = custody
        self.clock = clock

    async def _issued(self, who: Principal, certificate_id: str, action: Action = "read") -> Doc:
        return await issued_for(self.certs, who, certificate_id, action)

    async def acceptance_record(self, who: Principal, certificate_id: str) -> AcceptanceRecordView:
        doc = await self._issued(who, certificate_id)
        rec = doc.get("acceptance") or {}
        if "sha256" not in rec:
            raise not_found("acceptance_record", "biên bản nghiệm thu")  # drawn up when the certificate is activated
        base = f"/v1/certificates/{doc['_id']}/acceptance-record"
        signed = rec.get("signed_sha256")
        return AcceptanceRecordView(
            certificate_id=doc["_id"],
            text=rec.get("text", ""),
            sha256=rec["sha256"],
            pdf_url=f"{base}/pdf?version=unsigned",
            signing_request_id=rec.get("request_id"),
            signed=signed is not None,
            signed_sha256=signed,
            signed_pdf_url=f"{base}/pdf?version=signed" if signed else None,
        )

    async def activate(self, who: Principal, certificate_id: str, pin: str) -> ActivationView:
        problem = keywrap.pin_problem(pin)
        if problem:
            raise Invalid("weak_pin", problem, "Mã PIN phải gồm 6–8 chữ số và không quá dễ đoán")
        doc = await self._issued(who, certificate_id, "sign")
        if doc["status"] != S.PENDING_ACTIVATION:
            raise _not_pending()  # refused before the key is unsealed
        t = self.clock.now()
        pdf, record = await self.acceptance.draw_up(doc, t)
        record_sha256 = record["sha256"]
        key, sealed = await self.custody.seal_with_pin(doc, pin)
        signature = pki.sign(key, pdf)  # proof of possession, at activation
        sig_b64 = base64.b64encode(signature).decode()
        status, activated = domain.activated(
            S(doc["status"]),
            domain.Ref.of(doc),
            serial_number=doc["certificate"]["serial_number"],
            record_sha256=record_sha256,
            signature_b64=sig_b64,
            at=t,
        )
        done = await self.certs.update(
            {"_id": doc["_id"], "status": S.PENDING_ACTIVATION.value},
            {
                "$set": {
                    "status": status.value,
                    "activated_at": t,
                    "key": {"stage": "pin", "algorithm": doc["key"].get("algorithm"), "sealed": sealed},
                    "pin_failures": 0,
                    "acceptance": record | {"signature_b64": sig_b64},
                }
            },
            events=[activated],
        )
        if not done:
            raise _not_pending()
        request = await self.acceptance.ask(None, doc["_id"])  # should this fail, the app asks again
        return ActivationView(
            certificate_id=doc["_id"],
            status=status.value,
            acceptance_signature_b64=sig_b64,
            acceptance_record_sha256=record_sha256,
            acceptance_signing_request_id=request["_id"],
        )
