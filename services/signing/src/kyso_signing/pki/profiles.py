"""Certificate profiles (RFC 5280): the root CA, the issuing CA, the delegated OCSP responder, the
timestamp authority, the provider's seal and the Vietnamese subscriber certificate. Pure functions: a
key and a few facts in, a signed certificate out.

Three rules hold for every profile:

- **Validity is inclusive.** RFC 5280 §4.1.2.5: a certificate is valid from notBefore *through*
  notAfter, both included; so a certificate of length L ends one second before ``notBefore + L``
  (a 3-year subscriber certificate issued 2026-03-01T02:00:00Z ends 2029-03-01T01:59:59Z).
- **One policy tree.** The issuing CA asserts the provider's certificate policy and every
  certificate it issues (subscriber, seal, timestamp authority, OCSP responder) asserts that same
  policy, so ``openssl verify -explicit_policy -policy <CA_POLICY_OID>`` accepts each of them. The
  timestamp *policy* in a token (RFC 3161 ``TSTInfo.policy``) is a TSA policy, not a certificate
  policy, and appears in no certificate.
- **Signers are accepted by viewers.** Subscriber and seal certificates carry the EKUs
  emailProtection and documentSigning (see :data:`SIGNER_EKUS`).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from kyso_signing.pki import extensions as ext
from kyso_signing.pki import keys as pki
from kyso_signing.pki.keys import PrivateKey, PublicKey

# RFC 9336: id-kp-documentSigning
DOCUMENT_SIGNING = x509.ObjectIdentifier("1.3.6.1.5.5.7.3.36")
# The EKUs of a certificate that signs documents (subscriber and seal). documentSigning alone names the
# purpose exactly (RFC 9336) but NSS (poppler's pdfsig, Okular, Evince, Firefox) checks PDF signers as
# certificateUsageEmailSigner, which refuses an EKU without emailProtection; Adobe Acrobat accepts
# emailProtection too, and Vietnamese CAs' signing certificates carry it. Non-critical (EN 319 412-2
# §4.3.10), and no e-mail address is certified, so the CA/B Forum S/MIME requirements do not apply.
SIGNER_EKUS = (ExtendedKeyUsageOID.EMAIL_PROTECTION, DOCUMENT_SIGNING)
ROOT_VALIDITY = timedelta(days=20 * 365)
ISSUING_VALIDITY = timedelta(days=10 * 365)
BACKDATE = timedelta(minutes=5)  # tolerate relying parties whose clocks run a little behind
SECOND = timedelta(seconds=1)
NTR_PREFIX = "NTRVN-"  # ETSI EN 319 412-1 §5.1.4: a national trade register number, issued in Vietnam
_TAX_CODE = re.compile(r"[0-9]{10}(-[0-9]{3})?")  # a Vietnamese tax code (MST): 10 digits, a branch suffix


def last_second(start: datetime, length: timedelta) -> datetime:
    """The notAfter of a certificate valid ``length`` from ``start``: RFC 5280 counts notAfter as valid,
    so the last valid second is one before ``start + length`` (times are whole seconds in a certificate)."""
    return start.replace(microsecond=0) + length - SECOND


def _start(at: datetime) -> datetime:
    return (at - BACKDATE).replace(microsecond=0)


def _label_ok(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
        return True
    except ValueError:
        return "." in host  # RFC 5280 linters reject single-label host names such as "localhost"


@dataclass(frozen=True)
class Urls:
    """Where relying parties fetch what a certificate points to; built from one public base URL."""

    base: str

    def __post_init__(self) -> None:
        parts = urlsplit(self.base)
        if parts.scheme not in ("http", "https") or not parts.hostname or not _label_ok(parts.hostname):
            raise ValueError(
                "PKI_BASE_URL must be an http(s) URL with a dotted host name or an IP literal "
                f"(single-label hosts are not valid RFC 5280 URIs): {self.base!r}"
            )

    def _at(self, path: str) -> str:
        return self.base.rstrip("/") + path

    @property
    def issuing_crl(self) -> str:
        return self._at("/pki/crl/issuing.crl")

    @property
    def root_crl(self) -> str:
        return self._at("/pki/crl/root.crl")

    @property
    def issuing_certificate(self) -> str:
        return self._at("/pki/ca/issuing.cer")

    @property
    def root_certificate(self) -> str:
        return self._at("/pki/ca/root.cer")

    @property
    def ocsp(self) -> str:
        return self._at("/ocsp")


def ca_name(common_name: str, organisation: str) -> x509.Name:
    return ext.name(
        (NameOID.COUNTRY_NAME, "VN"), (NameOID.ORGANIZATION_NAME, organisation), (NameOID.COMMON_NAME, common_name)
    )


def ca_common_name(ca: x509.Certificate) -> str:
    value = ca.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    return value if isinstance(value, str) else value.decode()


def root_ca(key: PrivateKey, name: x509.Name, at: datetime) -> x509.Certificate:
    """Self-signed; its key signs only the issuing CA certificate and the root's ARL."""
    return (
        ext.builder(name, name, key.public_key(), pki.new_serial(), _start(at), last_second(_start(at), ROOT_VALIDITY))
        .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
        .add_extension(ext.key_usage(ca=True), critical=True)
        .sign(key, pki.digest_for(key))
    )


def issuing_ca(
    key: PublicKey,
    name: x509.Name,
    root_key: PrivateKey,
    root: x509.Certificate,
    urls: Urls,
    policy_oid: str,
    at: datetime,
) -> x509.Certificate:
    not_after = min(last_second(_start(at), ISSUING_VALIDITY), root.not_valid_after_utc)
    return (
        ext.builder(name, root.subject, key, pki.new_serial(), _start(at), not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(ext.key_usage(ca=True), critical=True)
        .add_extension(ext.aki(root_key), critical=False)
        .add_extension(ext.crl_dp(urls.root_crl), critical=False)
        .add_extension(ext.aia(urls.root_certificate), critical=False)
        .add_extension(ext.policies(policy_oid), critical=False)
        .sign(root_key, pki.digest_for(root_key))
    )


def ocsp_responder(
    key: PublicKey,
    ca_key: PrivateKey,
    ca: x509.Certificate,
    at: datetime,
    validity: timedelta,
    policy_oid: str,
) -> x509.Certificate:
    """RFC 6960 §4.2.2.2 delegated responder: EKU id-kp-OCSPSigning, id-pkix-ocsp-nocheck, short-lived;
    under the issuing CA's policy like every certificate it issues."""
    subject = ext.name(
        (NameOID.COUNTRY_NAME, "VN"),
        *[(a.oid, str(a.value)) for a in ca.subject if a.oid == NameOID.ORGANIZATION_NAME],
        (NameOID.COMMON_NAME, f"{ca_common_name(ca)} OCSP Responder"),
    )
    return (
        ext.builder(subject, ca.subject, key, pki.new_serial(), _start(at), _capped(at, validity, ca))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(ext.key_usage(signature=True), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.OCSP_SIGNING]), critical=False)
        .add_extension(x509.OCSPNoCheck(), critical=False)
        .add_extension(ext.aki(ca_key), critical=False)
        .add_extension(ext.policies(policy_oid), critical=False)
        .sign(ca_key, pki.digest_for(ca_key))
    )


def _capped(at: datetime, validity: timedelta, ca: x509.Certificate) -> datetime:
    """The last second of a certificate made at ``at`` (backdated), never beyond its issuing CA."""
    return min(last_second(_start(at), validity), ca.not_valid_after_utc)


def _provider_certificate(
    subject: x509.Name,
    ekus: tuple[x509.ObjectIdentifier, ...],
    eku_critical: bool,
    key: PublicKey,
    ca_key: PrivateKey,
    ca: x509.Certificate,
    urls: Urls,
    policy_oid: str,
    at: datetime,
    validity: timedelta,
) -> x509.Certificate:
    """A signing certificate of the provider's own (non-repudiation), with the revocation pointers
    long-term validation needs."""
    return (
        ext.builder(subject, ca.subject, key, pki.new_serial(), _start(at), _capped(at, validity, ca))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(ext.key_usage(signature=True, non_repudiation=True), critical=True)
        .add_extension(x509.ExtendedKeyUsage(list(ekus)), critical=eku_critical)
        .add_extension(ext.aki(ca_key), critical=False)
        .add_extension(ext.policies(policy_oid), critical=False)
        .add_extension(ext.crl_dp(urls.issuing_crl), critical=False)
        .add_extension(ext.aia(urls.issuing_certificate, urls.ocsp), critical=False)
        .sign(ca_key, pki.digest_for(ca_key))
    )


def timestamp_authority(
    key: PublicKey,
    ca_key: PrivateKey,
    ca: x509.Certificate,
    urls: Urls,
    policy_oid: str,
    at: datetime,
    validity: timedelta,
) -> x509.Certificate:
    """RFC 3161 §2.3: the only EKU is id-kp-timeStamping, critical; with revocation pointers (LTV).
    ``policy_oid`` is the certificate policy (the issuing CA's), not the TSA policy its tokens name."""
    subject = ext.name(
        (NameOID.COUNTRY_NAME, "VN"),
        *[(a.oid, str(a.value)) for a in ca.subject if a.oid == NameOID.ORGANIZATION_NAME],
        (NameOID.COMMON_NAME, f"{ca_common_name(ca)} Timestamp Authority"),
    )
    return _provider_certificate(
        subject, (ExtendedKeyUsageOID.TIME_STAMPING,), True, key, ca_key, ca, urls, policy_oid, at, validity
    )


def organisation_identifier(tax_code: str) -> str:
    """ETSI EN 319 412-1 §5.1.4 legal-person semantics identifier for a Vietnamese tax code (MST):
    ``NTRVN-<MST>``; raises ``ValueError`` for anything that is not a tax code."""
    if not _TAX_CODE.fullmatch(tax_code):
        raise ValueError(f"a Vietnamese tax code is 10 digits, optionally -NNN for a branch: {tax_code!r}")
    return NTR_PREFIX + tax_code


def provider_seal(
    key: PublicKey,
    organisation: str,
    tax_code: str,
    ca_key: PrivateKey,
    ca: x509.Certificate,
    urls: Urls,
    policy_oid: str,
    at: datetime,
    validity: timedelta,
) -> x509.Certificate:
    """The provider's electronic seal (a legal person's signing certificate): it seals service contracts
    and audit checkpoints. The subject names the legal person as ETSI EN 319 412-3 §4.2.1 asks
    (countryName, organizationName, organizationIdentifier ``NTRVN-<MST>``, commonName) and as
    Vietnamese CAs write an organisation (``UID=MST:<tax code>``). Non-repudiation, the signer EKUs,
    revocation pointers for LTV."""
    subject = ext.name(
        (NameOID.COUNTRY_NAME, "VN"),
        (NameOID.ORGANIZATION_NAME, organisation),
        (NameOID.ORGANIZATION_IDENTIFIER, organisation_identifier(tax_code)),
        (NameOID.COMMON_NAME, f"{organisation} Contract Seal"),
        (NameOID.USER_ID, f"MST:{tax_code}"),
    )
    return _provider_certificate(subject, SIGNER_EKUS, False, key, ca_key, ca, urls, policy_oid, at, validity)


@dataclass(frozen=True)
class Subscriber:
    """Who a subscriber certificate names, as on the citizen identity card — and, for an organisation
    certificate or an individual in an organisation, the organisation as registered (``O=``, ``UID=MST:``)."""

    full_name: str
    citizen_id: str
    province: str | None = None
    locality: str | None = None
    kind: str = "personal"  # personal · organisation · staff
    organisation: str | None = None
    tax_code: str | None = None
    organisation_province: str | None = None

    @classmethod
    def of_order(cls, order: dict[str, Any]) -> Subscriber:
        s, org = order["subscriber"], order.get("organisation") or {}
        return cls(
            s["full_name"],
            s["citizen_id"],
            s.get("province"),
            s.get("locality"),
            order.get("certificate_kind", "personal"),
            org.get("name"),
            org.get("tax_code"),
            org.get("province"),
        )

    def name(self) -> x509.Name:
        attrs: list[tuple[x509.ObjectIdentifier, str]] = [(NameOID.COUNTRY_NAME, "VN")]
        person = (NameOID.USER_ID, f"CCCD:{self.citizen_id}")
        if self.kind == "personal":
            if self.province:
                attrs.append((NameOID.STATE_OR_PROVINCE_NAME, self.province))
            if self.locality:
                attrs.append((NameOID.LOCALITY_NAME, self.locality))
            return ext.name(*attrs, (NameOID.COMMON_NAME, self.full_name), person)
        if not (self.organisation and self.tax_code):
            raise ValueError(f"a {self.kind} certificate names an organisation and its tax code")
        organisation = (NameOID.USER_ID, f"MST:{self.tax_code}")
        if self.kind == "organisation":  # the organisation, held by its authorised person
            if self.organisation_province:
                attrs.append((NameOID.STATE_OR_PROVINCE_NAME, self.organisation_province))
            attrs += [(NameOID.ORGANIZATION_NAME, self.organisation), (NameOID.COMMON_NAME, self.organisation)]
            return ext.name(*attrs, organisation, person)
        if self.kind != "staff":
            raise ValueError(f"unknown certificate kind {self.kind}")
        if self.province:
            attrs.append((NameOID.STATE_OR_PROVINCE_NAME, self.province))
        attrs += [(NameOID.ORGANIZATION_NAME, self.organisation), (NameOID.COMMON_NAME, self.full_name)]
        return ext.name(*attrs, person, organisation)


def subscriber_validity(at: datetime, years: int, ca: x509.Certificate) -> tuple[datetime, datetime]:
    """Whole calendar years from ``at`` (1–3, Decree 23/2025), never beyond the issuing CA: notAfter is
    the last second before the anniversary, since RFC 5280 counts notAfter as a valid second."""
    if not 1 <= years <= pki.MAX_SUBSCRIBER_YEARS:
        raise ValueError("subscriber certificates are valid 1 to 3 years")
    start = at.replace(microsecond=0)
    return start, min(pki.add_years(start, years) - SECOND, ca.not_valid_after_utc)


def subscriber(
    public: PublicKey,
    who: Subscriber,
    serial: int,
    not_before: datetime,
    not_after: datetime,
    ca_key: PrivateKey,
    ca: x509.Certificate,
    urls: Urls,
    policy_oid: str,
) -> x509.Certificate:
    return (
        ext.builder(who.name(), ca.subject, public, serial, not_before, not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(ext.key_usage(signature=True, non_repudiation=True), critical=True)
        .add_extension(x509.ExtendedKeyUsage(list(SIGNER_EKUS)), critical=False)
        .add_extension(ext.aki(ca_key), critical=False)
        .add_extension(ext.policies(policy_oid), critical=False)
        .add_extension(ext.crl_dp(urls.issuing_crl), critical=False)
        .add_extension(ext.aia(urls.issuing_certificate, urls.ocsp), critical=False)
        .sign(ca_key, pki.digest_for(ca_key))
    )
