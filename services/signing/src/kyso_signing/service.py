"""Signing use cases: prepare the contract once an order is paid, sign it on OTP consent, issue the
certificate, and activate it with a PIN and the subscriber's signature on the acceptance record."""

from __future__ import annotations

import base64
import logging
import uuid
from typing import Any

from kyso_contracts import (
    CertActivated,
    CertIssued,
    CloudEvent,
    ContractSigned,
    OrderPlaced,
    OtpPurpose,
    PaymentConfirmed,
    SmsOtpVerified,
)
from kyso_kit.auth import forbidden
from kyso_kit.crypto import SecretBox
from kyso_kit.errors import ApiError, not_found
from kyso_kit.inbox import mark_applied, once, upsert_once
from kyso_kit.outbox import with_events
from kyso_kit.runtime import ServiceRuntime
from kyso_kit.timeutil import as_utc, now

from . import documents, keywrap, pki
from .authority import Authority
from .settings import SigningSettings

log = logging.getLogger(__name__)


class SigningService:
    def __init__(self, runtime: ServiceRuntime, settings: SigningSettings) -> None:
        self.rt = runtime
        self.s = settings
        self.certs = runtime.db["certificates"]
        assert settings.master_key_b64
        self.box = SecretBox(settings.master_key_b64)
        self.master_key = base64.b64decode(settings.master_key_b64)
        self.authority = Authority(runtime.db["authority"], self.box, settings.ca_common_name)

    async def init(self) -> None:
        await self.certs.create_index([("order_id", 1)], unique=True)
        await self.certs.create_index([("contract.contract_id", 1)])
        await self.authority.load()

    # ------------------------------------------------------------------ contract preparation

    def _new_request(self) -> dict[str, Any]:
        return {"_id": uuid.uuid4().hex, "created_at": now(), "status": "collecting"}

    async def when_order_placed_remember_order(self, event: CloudEvent[OrderPlaced]) -> None:
        o = event.data
        snapshot = o.model_dump(mode="json")
        await upsert_once(
            self.certs,
            {"order_id": o.order_id},
            event.id,
            {"$set": {"order": snapshot, "account_id": o.account_id}},
            self._new_request(),
        )
        await self._prepare_contract_if_ready(o.order_id)

    async def when_payment_confirmed_prepare_contract(self, event: CloudEvent[PaymentConfirmed]) -> None:
        p = event.data
        await upsert_once(
            self.certs,
            {"order_id": p.order_id},
            event.id,
            {"$set": {"paid": True, "payment_id": p.payment_id, "paid_amount_vnd": p.amount_vnd}},
            self._new_request(),
        )
        await self._prepare_contract_if_ready(p.order_id)

    async def _prepare_contract_if_ready(self, order_id: str) -> None:
        # Order and payment arrive on different topics in either order; the contract is drawn up
        # when both are known, exactly once (status guard).
        doc = await self.certs.find_one({"order_id": order_id})
        if not doc or doc["status"] != "collecting" or not doc.get("paid") or not doc.get("order"):
            return
        if doc["paid_amount_vnd"] != doc["order"]["amount_vnd"]:
            log.error("paid amount differs from order amount", extra={"order_id": order_id})
            return
        contract_id = uuid.uuid4().hex
        text = documents.service_contract(contract_id, self.s.provider_name, doc["order"])
        await self.certs.update_one(
            {"_id": doc["_id"], "status": "collecting"},
            {
                "$set": {
                    "status": "awaiting_consent",
                    "contract": {
                        "contract_id": contract_id,
                        "text": text.decode(),
                        "sha256": documents.sha256_hex(text),
                        "prepared_at": now(),
                    },
                }
            },
        )

    async def contract_for_order(self, account_id: str, order_id: str) -> dict[str, Any]:
        doc = await self.certs.find_one({"order_id": order_id})
        if doc is None or "contract" not in doc:
            raise not_found("contract", "hợp đồng")
        if doc["account_id"] != account_id:
            raise forbidden()
        c = doc["contract"]
        return {
            "certificate_id": doc["_id"],
            "order_id": order_id,
            "contract_id": c["contract_id"],
            "text": c["text"],
            "sha256": c["sha256"],
            "status": doc["status"],
            "signed": doc["status"] not in ("collecting", "awaiting_consent"),
        }

    # ------------------------------------------------------------------ consent → certificate

    async def when_sms_otp_verified_sign_contract(self, event: CloudEvent[SmsOtpVerified]) -> None:
        e = event.data
        if e.purpose != OtpPurpose.CONTRACT_CONSENT:
            return
        doc = await self.certs.find_one({"contract.contract_id": e.subject})
        if doc is None:
            raise LookupError(f"no contract {e.subject}")  # not yet prepared here: retried, then dead-lettered
        if doc["status"] != "awaiting_consent":
            return
        if e.account_id != doc["account_id"] or e.binding_sha256 != doc["contract"]["sha256"]:
            # The code authorised something else (SCAL2 dynamic linking): no consent.
            log.warning("consent OTP not bound to this contract; ignored", extra={"contract_id": e.subject})
            return
        ca_key, ca_cert, seal = self.authority.ca_key, self.authority.ca_cert, self.authority.seal_key
        assert ca_key and ca_cert and seal
        order = doc["order"]
        t = now()
        contract_text = doc["contract"]["text"].encode()
        provider_sig = base64.b64encode(pki.sign(seal, contract_text)).decode()
        key = pki.new_key()
        cert = pki.issue_subscriber(
            ca_key,
            ca_cert,
            key.public_key(),
            pki.Subscriber(order["subscriber"]["full_name"], order["subscriber"]["citizen_id"]),
            order["validity_years"],
            t,
        )
        cert_info = {
            "serial_number": format(cert.serial_number, "x"),
            "subject_dn": cert.subject.rfc4514_string(),
            "not_before": cert.not_valid_before_utc,
            "not_after": cert.not_valid_after_utc,
            "certificate_pem": pki.pem(cert),
        }
        signed = self.rt.event(
            ContractSigned(
                certificate_id=doc["_id"],
                order_id=doc["order_id"],
                account_id=doc["account_id"],
                contract_id=e.subject,
                contract_sha256=doc["contract"]["sha256"],
                consent_challenge_id=e.challenge_id,
                provider_signature_b64=provider_sig,
                signed_at=t,
            ),
            causation_id=event.id,
            correlation_id=event.correlationid,
        )
        issued = self.rt.event(
            CertIssued(
                certificate_id=doc["_id"],
                order_id=doc["order_id"],
                account_id=doc["account_id"],
                serial_number=cert_info["serial_number"],
                subject_dn=cert_info["subject_dn"],
                not_before=cert_info["not_before"],
                not_after=cert_info["not_after"],
                certificate_pem=cert_info["certificate_pem"],
            ),
            causation_id=signed.id,
            correlation_id=event.correlationid,
        )
        res = await self.certs.update_one(
            once(event.id, {"_id": doc["_id"], "status": "awaiting_consent"}),
            mark_applied(
                with_events(
                    {
                        "$set": {
                            "status": "pending_activation",
                            "contract.signed_at": t,
                            "contract.consent_challenge_id": e.challenge_id,
                            "contract.provider_signature_b64": provider_sig,
                            "certificate": cert_info,
                            "key": {
                                "stage": "master",
                                "sealed": self.box.seal(pki.key_to_der(key), aad=f"subscriber:{doc['_id']}"),
                            },
                        }
                    },
                    [signed, issued],
                ),
                event.id,
            ),
        )
        if res.modified_count:
            self.rt.relay.nudge("certificates", doc["_id"])

    # ------------------------------------------------------------------ activation

    async def _owned(self, account_id: str, certificate_id: str) -> dict[str, Any]:
        doc = await self.certs.find_one({"_id": certificate_id})
        if doc is None or "certificate" not in doc:
            raise not_found("certificate", "chứng thư số")
        if doc["account_id"] != account_id:
            raise forbidden()
        return dict(doc)

    async def certificate(self, account_id: str, certificate_id: str) -> dict[str, Any]:
        doc = await self._owned(account_id, certificate_id)
        c = doc["certificate"]
        return {
            "certificate_id": doc["_id"],
            "order_id": doc["order_id"],
            "status": doc["status"],
            "serial_number": c["serial_number"],
            "subject_dn": c["subject_dn"],
            "not_before": as_utc(c["not_before"]).isoformat(),
            "not_after": as_utc(c["not_after"]).isoformat(),
            "certificate_pem": c["certificate_pem"],
            "ca_certificate_pem": self.authority.ca_pem,
        }

    async def acceptance_record(self, account_id: str, certificate_id: str) -> dict[str, Any]:
        doc = await self._owned(account_id, certificate_id)
        text = documents.acceptance_record(doc["_id"], doc["certificate"])
        return {"certificate_id": doc["_id"], "text": text.decode(), "sha256": documents.sha256_hex(text)}

    async def activate(self, account_id: str, certificate_id: str, pin: str, record_sha256: str) -> dict[str, Any]:
        problem = keywrap.pin_problem(pin)
        if problem:
            raise ApiError(422, "weak_pin", problem, "Mã PIN phải gồm 6–8 chữ số và không quá dễ đoán")
        doc = await self._owned(account_id, certificate_id)
        if doc["status"] != "pending_activation":
            raise ApiError(
                409,
                "not_pending_activation",
                "The certificate is not waiting for activation",
                "Chứng thư số không ở trạng thái chờ kích hoạt",
            )
        record = documents.acceptance_record(doc["_id"], doc["certificate"])
        if documents.sha256_hex(record) != record_sha256:
            raise ApiError(
                409,
                "document_mismatch",
                "The acceptance record changed; fetch it again",
                "Biên bản nghiệm thu đã thay đổi, vui lòng tải lại",
            )
        key_der = self.box.open(doc["key"]["sealed"], aad=f"subscriber:{doc['_id']}")
        signature = pki.sign(pki.key_from_der(key_der), record)
        sealed = keywrap.seal_with_pin(self.master_key, pin, f"subscriber:{doc['_id']}", key_der)
        t = now()
        sig_b64 = base64.b64encode(signature).decode()
        event = self.rt.event(
            CertActivated(
                certificate_id=doc["_id"],
                order_id=doc["order_id"],
                account_id=account_id,
                serial_number=doc["certificate"]["serial_number"],
                acceptance_record_sha256=record_sha256,
                acceptance_signature_b64=sig_b64,
                activated_at=t,
            )
        )
        res = await self.certs.update_one(
            {"_id": doc["_id"], "status": "pending_activation"},
            with_events(
                {
                    "$set": {
                        "status": "active",
                        "activated_at": t,
                        "key": {"stage": "pin", "sealed": sealed},
                        "acceptance": {"sha256": record_sha256, "signature_b64": sig_b64, "at": t},
                    }
                },
                [event],
            ),
        )
        if res.modified_count != 1:
            raise ApiError(
                409,
                "not_pending_activation",
                "The certificate is not waiting for activation",
                "Chứng thư số không ở trạng thái chờ kích hoạt",
            )
        self.rt.relay.nudge("certificates", doc["_id"])
        return {
            "certificate_id": doc["_id"],
            "status": "active",
            "acceptance_signature_b64": sig_b64,
            "acceptance_record_sha256": record_sha256,
        }
