"""The project's own RFC 3161 timestamp authority.

A request (``TimeStampReq``) names a message imprint (SHA-256/384/512 of something), optionally a
nonce, a policy and whether the TSA certificate should be included. The answer is a
``TimeStampResp``: ``granted`` with a token — CMS SignedData over a ``TSTInfo`` (policy, imprint, a
unique serial number, the time, accuracy, the nonce echoed) signed by the TSA key, whose certificate
the issuing CA issued with a critical id-kp-timeStamping EKU (RFC 3161 §2.3) and a CRL distribution
point and OCSP address, so the timestamp itself can be validated long after. The signed attributes
carry ``signingCertificateV2`` (RFC 5816). Anything else is a ``rejection`` with the failure info RFC
3161 §2.4.2 names (badAlg, badRequest, badDataFormat, unacceptedPolicy, unacceptedExtensions).
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from datetime import datetime

from asn1crypto import algos, cms, core, tsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509

from kyso_kit.clock import Clock
from kyso_signing.pki import keys as pki

log = logging.getLogger(__name__)

ACCEPTED = {"sha256": 32, "sha384": 48, "sha512": 64}
MAX_REQUEST = 4096


class TimeStampResp(core.Sequence):  # type: ignore[misc]
    """RFC 3161 §2.4.2: the token is OPTIONAL (absent from a rejection); asn1crypto declares it required."""

    _fields = [  # noqa: RUF012 - asn1crypto's schema declaration
        ("status", tsp.PKIStatusInfo),
        ("time_stamp_token", cms.ContentInfo, {"optional": True}),
    ]


def _reject(fail: str, text: str) -> bytes:
    resp = TimeStampResp(
        {
            "status": tsp.PKIStatusInfo(
                {"status": "rejection", "status_string": [text], "fail_info": tsp.PKIFailureInfo({fail})}
            )
        }
    )
    return bytes(resp.dump())


class TimestampAuthority:
    def __init__(self, policy_oid: str, clock: Clock) -> None:
        self.policy_oid = policy_oid
        self.clock = clock
        self._key: pki.PrivateKey | None = None
        self._cert: x509.Certificate | None = None
        self._cert_asn1: asn1_x509.Certificate | None = None

    def use(self, key: pki.PrivateKey, certificate: x509.Certificate) -> None:
        self._key, self._cert = key, certificate
        self._cert_asn1 = asn1_x509.Certificate.load(pki.der(certificate))
        # What every token repeats, encoded once (asn1crypto re-encodes a certificate nested in a new
        # structure from its parsed form on every dump: ~20 ms a token otherwise).
        c = self._cert_asn1
        self._tsa_name = asn1_x509.GeneralName({"directory_name": c.subject})
        self._sid = cms.SignerIdentifier(
            {
                "issuer_and_serial_number": cms.IssuerAndSerialNumber(
                    {"issuer": c.issuer, "serial_number": c.serial_number}
                )
            }
        )
        self._ess = cms.CMSAttribute(
            {
                "type": "signing_certificate_v2",
                "values": [
                    tsp.SigningCertificateV2(
                        {
                            "certs": [
                                tsp.ESSCertIDv2(
                                    {
                                        "hash_algorithm": algos.DigestAlgorithm({"algorithm": "sha256"}),
                                        "cert_hash": hashlib.sha256(c.dump()).digest(),
                                        "issuer_serial": tsp.IssuerSerial(
                                            {
                                                "issuer": [asn1_x509.GeneralName({"directory_name": c.issuer})],
                                                "serial_number": c.serial_number,
                                            }
                                        ),
                                    }
                                )
                            ]
                        }
                    )
                ],
            }
        )
        self._certs = cms.CertificateSet([cms.CertificateChoices(name="certificate", value=c)], implicit=0)
        # parsed back from their bytes: asn1crypto then reuses the bytes instead of encoding again
        self._tsa_name = asn1_x509.GeneralName.load(self._tsa_name.dump())
        self._sid = cms.SignerIdentifier.load(self._sid.dump())
        self._ess = cms.CMSAttribute.load(self._ess.dump())
        self._certs = cms.CertificateSet.load(self._certs.dump(), implicit=0)

    @property
    def certificate(self) -> x509.Certificate:
        assert self._cert is not None, "the TSA is not loaded"
        return self._cert

    def stamp_imprint(self, digest: bytes, hash_name: str, nonce: int | None = None, cert_req: bool = True) -> bytes:
        """A ``TimeStampToken`` (CMS ContentInfo) over ``digest``."""
        assert self._key is not None and self._cert_asn1 is not None, "the TSA is not loaded"
        at: datetime = self.clock.now()
        info: dict[str, object] = {
            "version": "v1",
            "policy": self.policy_oid,
            "message_imprint": tsp.MessageImprint(
                {"hash_algorithm": algos.DigestAlgorithm({"algorithm": hash_name}), "hashed_message": digest}
            ),
            "serial_number": int.from_bytes(secrets.token_bytes(16), "big"),
            "gen_time": at,
            "accuracy": tsp.Accuracy({"seconds": 1}),
            "ordering": False,
            "tsa": self._tsa_name,
        }
        if nonce is not None:
            info["nonce"] = nonce
        tst = tsp.TSTInfo(info)
        econtent = tst.dump()
        signed_attrs = cms.CMSAttributes(
            [
                cms.CMSAttribute({"type": "content_type", "values": ["tst_info"]}),
                cms.CMSAttribute({"type": "signing_time", "values": [cms.Time({"utc_time": at})]}),
                cms.CMSAttribute({"type": "message_digest", "values": [hashlib.sha256(econtent).digest()]}),
                self._ess,
            ]
        )
        signature = pki.sign(self._key, signed_attrs.dump())
        algorithm = "sha256_ecdsa" if pki.algorithm_of(self._key) != pki.KeyAlgorithm.RSA_3072_PSS else "rsassa_pss"
        signer_info = cms.SignerInfo(
            {
                "version": "v1",
                "sid": self._sid,
                "digest_algorithm": algos.DigestAlgorithm({"algorithm": "sha256"}),
                "signed_attrs": signed_attrs,
                "signature_algorithm": algos.SignedDigestAlgorithm({"algorithm": algorithm}),
                "signature": signature,
            }
        )
        signed_data: dict[str, object] = {
            "version": "v3",
            "digest_algorithms": [algos.DigestAlgorithm({"algorithm": "sha256"})],
            "encap_content_info": {"content_type": "tst_info", "content": core.ParsableOctetString(econtent)},
            "signer_infos": [signer_info],
        }
        if cert_req:
            signed_data["certificates"] = self._certs
        token = cms.ContentInfo({"content_type": "signed_data", "content": cms.SignedData(signed_data)})
        return bytes(token.dump())

    def respond(self, body: bytes) -> bytes:
        """A DER ``TimeStampResp`` for a DER ``TimeStampReq`` — never an exception."""
        if not body or len(body) > MAX_REQUEST:
            return _reject("bad_data_format", "the request is empty or too large")
        try:
            req = tsp.TimeStampReq.load(body, strict=True)
            version = req["version"].native
            imprint = req["message_imprint"]
            hash_name = imprint["hash_algorithm"]["algorithm"].native
            digest = imprint["hashed_message"].native
            policy = req["req_policy"].native
            nonce = req["nonce"].native
            cert_req = bool(req["cert_req"].native)
            extensions = req["extensions"].native
        except Exception as exc:  # any undecodable request is badDataFormat, never a 500
            log.info("malformed timestamp request", extra={"error": type(exc).__name__})
            return _reject("bad_data_format", "the request is not a DER TimeStampReq")
        if version != "v1":
            return _reject("bad_request", "only version 1 requests are understood")
        if hash_name not in ACCEPTED:
            return _reject("bad_alg", "use SHA-256, SHA-384 or SHA-512")
        if not isinstance(digest, bytes) or len(digest) != ACCEPTED[hash_name]:
            return _reject("bad_data_format", "the imprint's length does not match its algorithm")
        if policy is not None and policy != self.policy_oid:
            return _reject("unaccepted_policy", f"this TSA issues under {self.policy_oid} only")
        if extensions:
            return _reject("unaccepted_extensions", "no request extensions are supported")
        token = tsp.ContentInfo.load(self.stamp_imprint(digest, hash_name, nonce, cert_req))
        resp = TimeStampResp({"status": tsp.PKIStatusInfo({"status": "granted"}), "time_stamp_token": token})
        return bytes(resp.dump())
