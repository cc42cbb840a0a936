"""What a relying party does with a kyso certificate: read its revocation status over OCSP and CRL,
at the URLs written into the certificate itself."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID


@dataclass(frozen=True)
class Status:
    ocsp: str  # good · revoked · unknown (or the OCSP error status)
    reason: str | None
    crl_number: int
    crl_lists_it: bool


def _ocsp_url(cert: x509.Certificate) -> str:
    aia = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    return next(str(d.access_location.value) for d in aia if d.access_method == AuthorityInformationAccessOID.OCSP)


def _crl_url(cert: x509.Certificate) -> str:
    [dp] = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    assert dp.full_name is not None
    return str(dp.full_name[0].value)


async def revocation_status(certificate_pem: str, issuer_pem: str) -> Status:
    cert = x509.load_pem_x509_certificate(certificate_pem.encode())
    issuer = x509.load_pem_x509_certificate(issuer_pem.encode())
    request = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA256()).build()
    async with httpx.AsyncClient(timeout=10) as http:
        r = await http.post(
            _ocsp_url(cert),
            content=request.public_bytes(serialization.Encoding.DER),
            headers={"Content-Type": "application/ocsp-request"},
        )
        crl_der = (await http.get(_crl_url(cert))).content
    resp = ocsp.load_der_ocsp_response(r.content)
    if resp.response_status != ocsp.OCSPResponseStatus.SUCCESSFUL:
        status, reason = resp.response_status.name.lower(), None
    else:
        resp.certificates[0].verify_directly_issued_by(issuer)  # the delegated responder
        status = resp.certificate_status.name.lower()
        reason = resp.revocation_reason.name if resp.revocation_reason else None
    crl = x509.load_der_x509_crl(crl_der)
    if not crl.is_signature_valid(issuer.public_key()):  # type: ignore[arg-type]
        raise ValueError("the CRL is not signed by the issuing CA")
    number = crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    listed = crl.get_revoked_certificate_by_serial_number(cert.serial_number) is not None
    return Status(status, reason, number, listed)
