"""The CA issues the subscriber certificate on consent: the serial is reserved and recorded *before*
anything is signed, so no certificate can exist that the system does not know (CRL and OCSP rely on it).

The reservation is the same write that moves the certificate to ``issuing``: ``serial_number`` is a
unique index of the certificates, so two certificates can never hold one serial; ``spki_sha256`` is one
too, so no public key is ever certified twice."""

from __future__ import annotations

import base64
import logging
from datetime import datetime
from typing import Any

from kyso_contracts import CloudEvent, SmsOtpVerified
from kyso_kit.clock import Clock
from kyso_kit.crypto import off_loop
from kyso_kit.store import Doc, DuplicateKey, Store
from kyso_kit.timeutil import as_utc
from kyso_signing.credentials import domain
from kyso_signing.credentials.custody import KeyCustody
from kyso_signing.credentials.domain import CertificateStatus as S
from kyso_signing.credentials.records import certificates
from kyso_signing.credentials.registration import DUE, Registration
from kyso_signing.documents.files import Papers
from kyso_signing.pki import keys as pki
from kyso_signing.pki import profiles
from kyso_signing.pki.authority import Authority
from kyso_signing.pki.keys import KeyAlgorithm

DRAWS = 5
log = logging.getLogger(__name__)


class Issuance:
    def __init__(
        self,
        store: Store,
        authority: Authority,
        custody: KeyCustody,
        clock: Clock,
        papers: Papers,
        registration: Registration,
    ) -> None:
        self.papers = papers
        self.certs = certificates(store)
        self.events = store.events
        self.authority = authority
        self.custody = custody
        self.registration = registration
        self.clock = clock

    async def init(self) -> None:
        await self.certs.ensure_index([("serial_number", 1)], unique=True, sparse=True)
        await self.certs.ensure_index([("spki_sha256", 1)], unique=True, sparse=True)  # never certify a key twice
        await self.authority.load()

    async def issue_on_consent(self, doc: Doc, event: CloudEvent[SmsOtpVerified]) -> None:
        e = event.data
        if doc["status"] == S.AWAITING_CONSENT:
            status = domain.next_status(S(doc["status"]), "consent")
            t = self.clock.now()
            contract_pdf = await self.papers.get(doc["contract"]["sha256"])
            provider_sig = base64.b64encode(pki.sign(self.authority.seal_key, contract_pdf)).decode()
            algorithm = KeyAlgorithm(doc["order"].get("key_algorithm", KeyAlgorithm.ECDSA_P256))
            # The key and the validity are fixed with the serial, so a resumed issuance signs the very same
            # certificate body: a certificate the CA signed but did not store would be identical to the stored one.
            not_before, not_after = profiles.subscriber_validity(
                t.replace(microsecond=0), doc["order"]["validity_years"], self.authority.ca_certificate
            )
            for attempt in range(DRAWS):
                # an EC key takes ~0.1 ms, less than the hop to the worker pool; an RSA key up to a second
                key = (
                    pki.new_key(algorithm)
                    if algorithm != KeyAlgorithm.RSA_3072_PSS
                    else await off_loop(pki.new_key, algorithm)
                )
                serial = pki.serial_hex(pki.new_serial())
                try:
                    moved = await self.certs.update_and_get(
                        {"_id": doc["_id"], "status": S.AWAITING_CONSENT.value},
                        {
                            "$set": {
                                "status": status.value,
                                "serial_number": serial,
                                "spki_sha256": pki.spki_sha256(key),
                                "issuance": {
                                    "serial_number": serial,
                                    "reserved_at": t,
                                    "not_before": not_before,
                                    "not_after": not_after,
                                    "key_algorithm": algorithm.value,
                                },
                                "key": {
                                    "stage": "master",
                                    "algorithm": algorithm.value,
                                    "sealed": self.custody.seal_new(doc["_id"], key),
                                },
                                "contract.signed_at": t,
                                "contract.consent_challenge_id": e.challenge_id,
                                "contract.provider_signature_b64": provider_sig,
                            }
                        },
                        caused_by=event.id,
                    )
                    break
                except DuplicateKey:
                    if attempt == DRAWS - 1:
                        raise  # a broken random source: retried, then dead-lettered; nothing is issued
                    continue  # the serial or the key is taken (practically never); draw again
            else:  # pragma: no cover - the loop breaks or raises
                return
            if moved is None:
                return  # another delivery or another consent got there first
            doc = moved
        # A crash after the reservation resumes here when the event is delivered again.
        if doc["status"] == S.ISSUING and doc["contract"].get("consent_challenge_id") == e.challenge_id:
            await self._sign_and_record(doc, event)

    async def _sign_and_record(self, doc: Doc, event: CloudEvent[SmsOtpVerified]) -> None:
        order, reserved = doc["order"], doc["issuance"]
        serial = reserved["serial_number"]
        key = self.custody.open_new(doc)
        try:
            cert = profiles.subscriber(
                key.public_key(),
                profiles.Subscriber.of_order(order),
                int(serial, 16),
                as_utc(reserved["not_before"]),
                as_utc(reserved["not_after"]),
                self.authority.ca_key,
                self.authority.ca_certificate,
                self.authority.urls,
                self.authority.policy_oid,
            )
        except (ValueError, KeyError) as exc:  # the profile refuses what the order names: no retry helps
            await self._fail(doc, event, type(exc).__name__)
            return
        info: dict[str, Any] = {
            "serial_number": serial,
            "subject_dn": cert.subject.rfc4514_string(),
            "not_before": cert.not_valid_before_utc,
            "not_after": cert.not_valid_after_utc,
            "certificate_pem": pki.pem(cert),
            "key_algorithm": reserved.get("key_algorithm", KeyAlgorithm.ECDSA_P256.value),
        }
        c = doc["contract"]
        ref = domain.Ref.of(doc)
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
        recorded = await self.certs.update_and_get(
            {"_id": doc["_id"], "status": S.ISSUING.value, "serial_number": serial},
            {
                "$set": {
                    "status": status.value,
                    "certificate": info,
                    "expires_on": expiry_day(info["not_after"]),
                    "revision": 1,
                    **DUE,  # the CA registry learns the serial (registration)
                }
            },
            events=[signed, issued],
        )
        if recorded is not None:  # the CA registry learns the serial now
            await self.registration.issued(recorded)

    async def _fail(self, doc: Doc, event: CloudEvent[SmsOtpVerified], why: str) -> None:
        """Issuance failed for good (nothing was signed with the reserved serial): the key is destroyed
        and ``IssuanceStopped`` tells payment to refund and registration to show it."""
        ref = domain.Ref.of(doc)
        status, stop = domain.stopped(S(doc["status"]), ref, "issuance_failed", self.clock.now())
        log.error("issuance failed for good", extra={"certificate_id": doc["_id"], "error": why})
        await self.certs.update(
            {"_id": doc["_id"], "status": S.ISSUING.value},
            {
                "$set": {"status": status.value, "failure": why, "key_destroyed_at": stop.stopped_at},
                "$unset": {"key": ""},
            },
            events=[self.events(stop, causation_id=event.id)],
        )


def expiry_day(not_after: datetime) -> str:
    """The UTC day a certificate expires, an indexed equality key for the expiry job."""
    return as_utc(not_after).date().isoformat()
