"""What the CSC API tells a relying party about the service and its credentials: ``info``,
``credentials/list`` and ``credentials/info``. Reading only; ``remote.csc.Csc`` adds authorising and signing."""

from __future__ import annotations

import base64
from typing import Any

from kyso_kit.clock import Clock
from kyso_kit.store import Store
from kyso_kit.timeutil import as_utc
from kyso_signing.credentials.domain import CertificateStatus as S
from kyso_signing.credentials.records import certificates, is_issued, issued
from kyso_signing.documents.files import Papers
from kyso_signing.pki import keys as pki
from kyso_signing.pki import signer
from kyso_signing.pki.authority import Authority
from kyso_signing.pki.keys import KeyAlgorithm
from kyso_signing.pki.ocsp import Responder
from kyso_signing.pki.tsa import TimestampAuthority
from kyso_signing.remote.clients import Client
from kyso_signing.remote.csc_wire import (
    CERT_STATUS,
    LEVELS,
    SPECS,
    ListIn,
    invalid,
)
from kyso_signing.remote.domain import MAX_DOCUMENTS
from kyso_signing.remote.requests import RemoteSigning
from kyso_signing.remote.webhooks import Webhooks


class CscCredentials:
    def __init__(
        self,
        store: Store,
        remote: RemoteSigning,
        authority: Authority,
        webhooks: Webhooks,
        clock: Clock,
        stamper: TimestampAuthority | None = None,
        papers: Papers | None = None,
        responder: Responder | None = None,
    ) -> None:
        self.stamper = stamper
        self.papers = papers
        self.responder = responder
        self.certs = certificates(store)
        self.requests = remote.requests
        self.responses = store.collection("csc_responses")
        self.sads = remote.sads
        self.remote = remote
        self.authority = authority
        self.webhooks = webhooks
        self.clock = clock

    def info(self, base_url: str) -> dict[str, Any]:
        """``base_url``: where this service was reached (``…/``); ``oauth2`` is the base URI of its OAuth
        2.0 server (CSC v2 §11.1), so ``{oauth2}oauth2/token`` is ``POST /v1/oauth2/token``."""
        return {
            "specs": SPECS,
            "name": "kyso",
            "logo": "https://kyso.vn/logo.png",
            "region": "VN",
            "lang": "vi-VN",
            "description": "kyso remote signing (SCAL2: the subscriber confirms in the kyso app with PIN and OTP)",
            "authType": ["oauth2client"],
            "oauth2": base_url.rstrip("/") + "/v1/",
            "asynchronousOperationMode": True,
            "methods": [
                "credentials/list",
                "credentials/info",
                "credentials/authorize",
                "credentials/authorizeCheck",
                "signatures/signHash",
                "signatures/signDoc",
                "signatures/signPolling",
                "signatures/timestamp",
            ],
            "signature_formats": {"formats": ["P"], "envelope_properties": [["Certification", "Revision"]]},
            "conformance_levels": list(LEVELS),
            "signAlgorithms": {
                "algos": [*signer.ECDSA_WITH.values(), signer.RSASSA_PSS],
                "algoParams": [base64.b64encode(signer.pss_params(h)).decode() for h in signer.HASHES.values()],
            },
        }

    async def _credential(self, client: Client, credential_id: str) -> dict[str, Any]:
        cert = await issued(self.certs, credential_id)
        if cert is None:
            raise invalid("Invalid parameter credentialID")
        return cert

    def credential_info(
        self, cert: dict[str, Any], certificates: str, cert_info: bool, auth_info: bool
    ) -> dict[str, Any]:
        c = cert["certificate"]
        x = pki.load_certificate(c["certificate_pem"])
        algorithm = KeyAlgorithm(c.get("key_algorithm", KeyAlgorithm.ECDSA_P256))
        status = S(cert["status"])
        key: dict[str, Any] = {
            "status": "enabled" if status == S.ACTIVE else "disabled",
            "algo": signer.signature_algorithms(algorithm),
            "len": pki.public_key_of(x).key_size,
        }
        if algorithm != KeyAlgorithm.RSA_3072_PSS:
            key["curve"] = "1.3.132.0.34" if algorithm == KeyAlgorithm.ECDSA_P384 else "1.2.840.10045.3.1.7"
        out: dict[str, Any] = {
            "description": f"kyso personal certificate {c['serial_number']}",
            "key": key,
            "cert": {"status": CERT_STATUS.get(status, "valid")},
            "auth": {"mode": "explicit"},
            "SCAL": "2",
            "multisign": MAX_DOCUMENTS,
            "lang": "vi-VN",
        }
        chain = [pki.der(x)]
        if certificates == "chain":
            chain += [pki.der(self.authority.ca_certificate), pki.der(self.authority.root_certificate)]
        if certificates in ("single", "chain"):
            out["cert"]["certificates"] = [base64.b64encode(d).decode() for d in chain]
        if cert_info:
            out["cert"] |= {
                "issuerDN": x.issuer.rfc4514_string(),
                "serialNumber": c["serial_number"],
                "subjectDN": x.subject.rfc4514_string(),
                "validFrom": x.not_valid_before_utc.strftime("%Y%m%d%H%M%SZ"),
                "validTo": x.not_valid_after_utc.strftime("%Y%m%d%H%M%SZ"),
            }
        if auth_info:
            out["auth"] |= {
                "expression": "PIN AND OTP",
                "objects": [
                    {"type": "PasswordOOB", "id": "PIN", "format": "N", "label": "Signing PIN",
                     "description": "Typed by the subscriber in the kyso app, never sent by the relying party"},
                    {"type": "ChallengeResponseOOB", "id": "OTP", "format": "N", "generator": "ocra",
                     "label": "SmartOTP transaction code or SMS code",
                     "description": "Computed over the digests being signed (dynamic linking)"},
                ],
            }  # fmt: skip
        return out

    async def credentials(self, client: Client, body: ListIn) -> dict[str, Any]:
        if not body.userID:
            raise invalid("Missing parameter userID")
        certs = [d for d in await self.certs.find({"account_id": body.userID}) if is_issued(d)]
        if body.onlyValid:
            certs = [d for d in certs if d["status"] == S.ACTIVE]
        certs.sort(key=lambda d: as_utc(d["certificate"]["not_before"]), reverse=True)
        out: dict[str, Any] = {"credentialIDs": [d["_id"] for d in certs]}
        if body.credentialInfo:
            out["credentialInfos"] = [
                {"credentialID": d["_id"], **self.credential_info(d, body.certificates, body.certInfo, body.authInfo)}
                for d in certs
            ]
        if body.onlyValid:
            out["onlyValid"] = True
        return out
