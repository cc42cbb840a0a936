"""CMS signed attributes of a PAdES baseline signature (ETSI EN 319 142-1 §6.3), below PDF embedding as in
pyHanko's ``pdf_cms``: remote signing needs only these to compute the digest a subscriber's key signs,
and ``documents.pades`` assembles the SignedData around them later."""

from __future__ import annotations

import hashlib
from functools import lru_cache

from asn1crypto import algos, tsp
from asn1crypto import cms as acms
from asn1crypto import x509 as ax509
from cryptography import x509
from cryptography.hazmat.primitives import serialization


@lru_cache(maxsize=256)
def _signing_certificate_attribute(der: bytes) -> bytes:
    """ESS signing-certificate-v2 (RFC 5035) naming the certificate ``der``, encoded once per certificate."""
    ac = ax509.Certificate.load(der)
    ess = tsp.SigningCertificateV2(
        {
            "certs": [
                tsp.ESSCertIDv2(
                    {
                        "hash_algorithm": algos.DigestAlgorithm({"algorithm": "sha256"}),
                        "cert_hash": hashlib.sha256(der).digest(),
                        "issuer_serial": tsp.IssuerSerial(
                            {
                                "issuer": [ax509.GeneralName(name="directory_name", value=ac.issuer)],
                                "serial_number": ac.serial_number,
                            }
                        ),
                    }
                )
            ]
        }
    )
    out: bytes = acms.CMSAttribute({"type": "signing_certificate_v2", "values": [ess]}).dump()
    return out


def signed_attributes(document_digest: bytes, cert: x509.Certificate) -> bytes:
    """DER of the CMS signed attributes of a PAdES baseline signature (EN 319 142-1 §6.3): content type,
    message digest (the document's SHA-256 byte-range digest), ESS signing-certificate-v2; no signing
    time. They depend only on the digest and the certificate, so they can be rebuilt at any time."""
    ess = acms.CMSAttribute.load(_signing_certificate_attribute(cert.public_bytes(serialization.Encoding.DER)))
    attrs = acms.CMSAttributes(
        [
            acms.CMSAttribute({"type": "content_type", "values": ["data"]}),
            acms.CMSAttribute({"type": "message_digest", "values": [document_digest]}),
            ess,
        ]
    )
    out: bytes = attrs.dump()
    return out


def to_be_signed(document_digest: bytes, cert: x509.Certificate) -> bytes:
    """The digest the subscriber's key signs for a PAdES signature over ``document_digest``."""
    return hashlib.sha256(signed_attributes(document_digest, cert)).digest()
