"""The X.509 pieces every certificate profile is built from (RFC 5280 §4.2): names, key usage, CRL
distribution point, authority information access, policies, the builder with its subject key
identifier, and the authority key identifier. ``pki.profiles`` composes them per profile."""

from __future__ import annotations

from datetime import datetime

from cryptography import x509
from cryptography.x509.oid import AuthorityInformationAccessOID

from kyso_signing.pki.keys import PrivateKey, PublicKey


def name(*attrs: tuple[x509.ObjectIdentifier, str]) -> x509.Name:
    return x509.Name([x509.NameAttribute(oid, value) for oid, value in attrs])


def key_usage(*, signature: bool = False, non_repudiation: bool = False, ca: bool = False) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=signature,
        content_commitment=non_repudiation,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


def crl_dp(url: str) -> x509.CRLDistributionPoints:
    return x509.CRLDistributionPoints(
        [
            x509.DistributionPoint(
                full_name=[x509.UniformResourceIdentifier(url)], relative_name=None, reasons=None, crl_issuer=None
            )
        ]
    )


def aia(ca_issuers: str, ocsp: str | None = None) -> x509.AuthorityInformationAccess:
    points = []
    if ocsp:
        points.append(x509.AccessDescription(AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(ocsp)))
    points.append(
        x509.AccessDescription(AuthorityInformationAccessOID.CA_ISSUERS, x509.UniformResourceIdentifier(ca_issuers))
    )
    return x509.AuthorityInformationAccess(points)


def policies(policy_oid: str) -> x509.CertificatePolicies:
    return x509.CertificatePolicies([x509.PolicyInformation(x509.ObjectIdentifier(policy_oid), None)])


def builder(
    subject: x509.Name, issuer: x509.Name, public: PublicKey, serial: int, not_before: datetime, not_after: datetime
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public)
        .serial_number(serial)
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
    )


def aki(issuer_key: PrivateKey) -> x509.AuthorityKeyIdentifier:
    return x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key())
