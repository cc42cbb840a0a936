"""What an offline validator needs beside a signature (long-term validation): the CA's certificates and
CRLs as published now (``Trust``), the chain a CMS signature names, and the revocation data issued *after*
each certificate it covers — an OCSP answer made when the signature was completed, else the issuing CA's
CRL; the issuing CA by the root's ARL (see ``documents.pades``)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from asn1crypto import cms as acms
from asn1crypto import core
from asn1crypto import crl as acrl
from asn1crypto import ocsp as aocsp
from asn1crypto import x509 as ax509
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.registry import SimpleCertificateStore

from kyso_signing.pki import keys as pki


def asn1(cert: x509.Certificate) -> ax509.Certificate:
    return ax509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))


@dataclass(frozen=True)
class Trust:
    """What the CA publishes right now: its two certificates and its two current CRLs; and, once a
    signature is made, the OCSP answers made then for its end-entity certificates."""

    root: x509.Certificate
    issuing: x509.Certificate
    crls_der: tuple[bytes, ...]
    moment: datetime | None = None  # "now" for path validation (the service clock)
    ocsps_der: tuple[bytes, ...] = ()

    def context(self, crls: list[Any] | None = None, ocsps: list[Any] | None = None) -> ValidationContext:
        """A fresh validation context (they cache what they learn) with local data only, hard-fail: by
        default all this holds, else just the ``crls`` and ``ocsps`` given."""
        return ValidationContext(
            trust_roots=[asn1(self.root)],
            other_certs=[asn1(self.issuing)],
            crls=list(self.crls_der) if crls is None else crls,
            ocsps=list(self.ocsps_der) if ocsps is None else ocsps,
            allow_fetching=False,
            revocation_mode="hard-fail",
            moment=self.moment,
        )

    def registry(self) -> SimpleCertificateStore:
        store: SimpleCertificateStore = SimpleCertificateStore.from_certs(  # type: ignore[no-untyped-call]
            [asn1(self.issuing), asn1(self.root)]
        )
        return store


def chain_of(signature_cms: bytes, trust: Trust) -> list[Any]:
    """The certificates a validator needs for a signature we made: those in its CMS (the signer's), those in
    its signature timestamp token (the TSA's), and the CA's two. We issued all of them, so the CA's CRLs
    cover every one: the DSS is written from what we know, without re-validating our own chain."""
    content = acms.ContentInfo.load(signature_cms)
    certs: dict[bytes, Any] = {}
    signed_data = content["content"]
    for c in signed_data["certificates"]:
        certs[c.chosen.dump()] = c.chosen
    for info in signed_data["signer_infos"]:
        unsigned = info["unsigned_attrs"]
        for attr in [] if isinstance(unsigned, core.Void) else unsigned:
            if attr["type"].native != "signature_time_stamp_token":
                continue
            for token in attr["values"]:
                for c in token["content"]["certificates"]:
                    certs[c.chosen.dump()] = c.chosen
    for c in (trust.issuing, trust.root):
        certs[pki.der(c)] = asn1(c)
    return list(certs.values())


def end_entities(signature_cms: bytes, trust: Trust) -> list[x509.Certificate]:
    """The certificates of a signature (the signer's, its timestamp authority's) that the CA's OCSP
    responder answers for: all those a validator needs except the CA's own two."""
    cas = {pki.der(trust.issuing), pki.der(trust.root)}
    return [x509.load_der_x509_certificate(c.dump()) for c in chain_of(signature_cms, trust) if c.dump() not in cas]


def _answers(der: bytes) -> list[Any]:
    """The single responses of a successful OCSP response."""
    resp = aocsp.OCSPResponse.load(der)
    if resp["response_status"].native != "successful":
        return []
    return list(resp["response_bytes"]["response"].parsed["tbs_response_data"]["responses"])


def _answered(cert: Any, ocsp_der: bytes) -> bool:
    """Whether the OCSP response ``ocsp_der`` answers for ``cert`` (its CertID: serial and issuer name)."""
    for single in _answers(ocsp_der):
        cid = single["cert_id"]
        h = hashlib.new(cid["hash_algorithm"]["algorithm"].native, cert.issuer.dump()).digest()
        if cid["serial_number"].native == cert.serial_number and cid["issuer_name_hash"].native == h:
            return True
    return False


def revocation_data(chain: list[Any], trust: Trust) -> tuple[list[Any], list[Any]]:
    """The OCSP responses and CRLs to embed for ``chain``: for each certificate but the self-signed root,
    the OCSP answers made for it at signing time, or when there are none the current CRL of its issuer
    (for the issuing CA: the root's ARL). The issuing CA's CRL, older than a certificate issued since it
    was published, is embedded only for a certificate no OCSP answer covers."""
    ocsps: dict[bytes, Any] = {}
    crls: dict[bytes, Any] = {}
    published = [acrl.CertificateList.load(c) for c in trust.crls_der]
    for cert in chain:
        if cert.issuer == cert.subject:
            continue
        answers = [d for d in trust.ocsps_der if _answered(cert, d)]
        for d in answers:
            ocsps[d] = aocsp.OCSPResponse.load(d)
        if not answers:
            for c in published:
                if c["tbs_cert_list"]["issuer"] == cert.issuer:
                    crls[c.dump()] = c
    return list(ocsps.values()), list(crls.values())
