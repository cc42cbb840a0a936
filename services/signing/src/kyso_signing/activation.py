"""Activation: the subscriber sets a signing PIN and signs the acceptance record with the new key."""

from __future__ import annotations

import base64
import hashlib

from kyso_kit.auth import Principal, ensure_may
from kyso_kit.clock import Clock
from kyso_kit.crypto import SecretBox, off_loop
from kyso_kit.errors import Conflict, Invalid, not_found
from kyso_kit.store import Doc, Store

from . import documents, domain, keywrap, pki
from .authority import Authority
from .domain import CertificateStatus as S
from .schemas import AcceptanceRecordView, ActivationView


def _not_pending() -> Conflict:
    return Conflict(
        "not_pending_activation",
        "The certificate is not waiting for activation",
        "Chứng thư số không ở trạng thái chờ kích hoạt",
    )


class Activation:
    def __init__(self, store: Store, authority: Authority, master_key_b64: str, clock: Clock) -> None:
        self.certs = store.collection("certificates", events=True)
        self.authority = authority
        self.master_key = base64.b64decode(master_key_b64)
        self.box = SecretBox(master_key_b64)
        self.clock = clock

    async def _issued(self, who: Principal, certificate_id: str, action: str = "read") -> Doc:
        doc = await self.certs.get(certificate_id)
        if doc is None or "certificate" not in doc:
            raise not_found("certificate", "chứng thư số")
        ensure_may(who, doc["account_id"], action)  # type: ignore[arg-type]
        return doc

    async def acceptance_record(self, who: Principal, certificate_id: str) -> AcceptanceRecordView:
        doc = await self._issued(who, certificate_id)
        text = documents.acceptance_record(doc["_id"], doc["certificate"])
        return AcceptanceRecordView(certificate_id=doc["_id"], text=text.decode(), sha256=documents.sha256_hex(text))

    async def activate(self, who: Principal, certificate_id: str, pin: str, record_sha256: str) -> ActivationView:
        problem = keywrap.pin_problem(pin)
        if problem:
            raise Invalid("weak_pin", problem, "Mã PIN phải gồm 6–8 chữ số và không quá dễ đoán")
        doc = await self._issued(who, certificate_id, "sign")
        if doc["status"] != S.PENDING_ACTIVATION:
            raise _not_pending()  # refused before the key is unsealed
        record = documents.acceptance_record(doc["_id"], doc["certificate"])
        if hashlib.sha256(record).hexdigest() != record_sha256:
            raise Conflict(
                "document_mismatch",
                "The acceptance record changed; fetch it again",
                "Biên bản nghiệm thu đã thay đổi, vui lòng tải lại",
            )
        owner = f"subscriber:{doc['_id']}"
        key_der = self.box.open(doc["key"]["sealed"], aad=owner)
        signature = pki.sign(pki.key_from_der(key_der, keep=False), record)
        sealed = await off_loop(keywrap.seal_with_pin, self.master_key, pin, owner, key_der)
        t = self.clock.now()
        sig_b64 = base64.b64encode(signature).decode()
        status, activated = domain.activated(
            S(doc["status"]),
            domain.Ref(certificate_id=doc["_id"], order_id=doc["order_id"], account_id=doc["account_id"]),
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
                    "acceptance": {"sha256": record_sha256, "signature_b64": sig_b64, "at": t},
                }
            },
            events=[activated],
        )
        if not done:
            raise _not_pending()
        return ActivationView(
            certificate_id=doc["_id"],
            status=status.value,
            acceptance_signature_b64=sig_b64,
            acceptance_record_sha256=record_sha256,
        )
