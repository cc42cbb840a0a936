"""The CA issues the subscriber certificate on consent: the serial is reserved and recorded *before*
anything is signed, so no certificate can exist that the system does not know (CRL and OCSP rely on it).

The reservation is the same write that moves the certificate to ``issuing``: ``serial_number`` is a
unique index of the certificates, so two certificates can never hold one serial."""

from __future__ import annotations

import base64
from typing import Any

from kyso_contracts import CloudEvent, SmsOtpVerified
from kyso_kit.clock import Clock
from kyso_kit.crypto import SecretBox
from kyso_kit.store import Doc, DuplicateKey, Store

from . import domain, pki
from .authority import Authority
from .domain import CertificateStatus as S


class Issuance:
    def __init__(self, store: Store, authority: Authority, box: SecretBox, clock: Clock) -> None:
        self.certs = store.collection("certificates", events=True)
        self.events = store.events
        self.authority = authority
        self.box = box
        self.clock = clock

    async def init(self) -> None:
        await self.certs.ensure_index([("serial_number", 1)], unique=True, sparse=True)
        await self.authority.load()

    async def issue_on_consent(self, doc: Doc, event: CloudEvent[SmsOtpVerified]) -> None:
        e = event.data
        if doc["status"] == S.AWAITING_CONSENT:
            status = domain.next_status(S(doc["status"]), "consent")
            t = self.clock.now()
            seal = self.authority.seal_key
            assert seal is not None
            provider_sig = base64.b64encode(pki.sign(seal, doc["contract"]["text"].encode())).decode()
            while True:
                serial = format(pki.new_serial(), "x")
                try:
                    moved = await self.certs.update_and_get(
                        {"_id": doc["_id"], "status": S.AWAITING_CONSENT.value},
                        {
                            "$set": {
                                "status": status.value,
                                "serial_number": serial,
                                "issuance": {"serial_number": serial, "reserved_at": t},
                                "contract.signed_at": t,
                                "contract.consent_challenge_id": e.challenge_id,
                                "contract.provider_signature_b64": provider_sig,
                            }
                        },
                        caused_by=event.id,
                    )
                    break
                except DuplicateKey:
                    continue  # the serial is taken (159 random bits: practically never); draw another
            if moved is None:
                return  # another delivery or another consent got there first
            doc = moved
        # A crash after the reservation resumes here when the event is delivered again.
        if doc["status"] == S.ISSUING and doc["contract"].get("consent_challenge_id") == e.challenge_id:
            await self._sign_and_record(doc, event)

    async def _sign_and_record(self, doc: Doc, event: CloudEvent[SmsOtpVerified]) -> None:
        ca_key, ca_cert = self.authority.ca_key, self.authority.ca_cert
        assert ca_key and ca_cert
        order, serial, t = doc["order"], doc["issuance"]["serial_number"], self.clock.now()
        key = pki.new_key()
        cert = pki.issue_subscriber(
            ca_key,
            ca_cert,
            key.public_key(),
            pki.Subscriber(order["subscriber"]["full_name"], order["subscriber"]["citizen_id"]),
            order["validity_years"],
            t,
            int(serial, 16),
        )
        info: dict[str, Any] = {
            "serial_number": serial,
            "subject_dn": cert.subject.rfc4514_string(),
            "not_before": cert.not_valid_before_utc,
            "not_after": cert.not_valid_after_utc,
            "certificate_pem": pki.pem(cert),
        }
        c = doc["contract"]
        ref = domain.Ref(certificate_id=doc["_id"], order_id=doc["order_id"], account_id=doc["account_id"])
        status, signed_payload, issued_payload = domain.issued(
            S(doc["status"]),
            ref,
            domain.Signed(
                contract_id=c["contract_id"],
                contract_sha256=c["sha256"],
                consent_challenge_id=c["consent_challenge_id"],
                provider_signature_b64=c["provider_signature_b64"],
                signed_at=c["signed_at"],
                serial_number=serial,
                subject_dn=info["subject_dn"],
                not_before=info["not_before"],
                not_after=info["not_after"],
                certificate_pem=info["certificate_pem"],
            ),
        )
        signed = self.events(signed_payload, causation_id=event.id)
        issued = self.events(issued_payload, causation_id=signed.id)
        await self.certs.update(
            {"_id": doc["_id"], "status": S.ISSUING.value, "serial_number": serial},
            {
                "$set": {
                    "status": status.value,
                    "certificate": info,
                    "key": {
                        "stage": "master",
                        "sealed": self.box.seal(pki.key_to_der(key), aad=f"subscriber:{doc['_id']}"),
                    },
                }
            },
            events=[signed, issued],
        )
