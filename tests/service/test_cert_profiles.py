"""Every certificate kyso issues, checked by tools that are not kyso's: validity counted the way RFC 5280
counts it (notAfter is a valid second), one policy tree that ``openssl verify -explicit_policy`` walks
for subscriber, seal, timestamp-authority and OCSP-responder certificates, a seal certificate that
names its legal person as ETSI EN 319 412-1/-3 ask (pkilint's ETSI linter), and the provider's
certificates served under /pki/."""

from __future__ import annotations

import dataclasses
import subprocess
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID
from fastapi import FastAPI
from pydantic import ValidationError

from kyso_kit.crypto import SecretBox
from kyso_signing.api import pki as pki_api
from kyso_signing.pki import keys as pki
from kyso_signing.pki import profiles
from kyso_signing.pki.authority import PROFILE, SEAL_VALIDITY, TSA_VALIDITY, Authority
from kyso_signing.pki.hierarchy import ROOT, SEAL, TSA
from kyso_signing.settings import DEV_POLICY_OID, SigningSettings
from pkilint_check import certificate_findings, etsi_findings

from .test_ca import cert_of, issue
from .test_signing_rules import HIERARCHY, MASTER, Signing

SECOND = timedelta(seconds=1)
TAX_CODE = "0100109106"
# pkilint's ETSI linter refuses internal names (127.0.0.1) and wants an http:// CRL address (GEN-4.3.11-4)
PUBLIC = dataclasses.replace(HIERARCHY, urls=profiles.Urls("http://pki.kyso.vn"), tax_code=TAX_CODE)


@pytest.fixture
async def signing(store: Any, clock: Any) -> Signing:
    s = Signing(store, clock)
    await s.start()
    return s


def inclusive_length(cert: x509.Certificate) -> timedelta:
    """RFC 5280 §4.1.2.5: valid from notBefore through notAfter, both included."""
    return cert.not_valid_after_utc - cert.not_valid_before_utc + SECOND


# --------------------------------------------------------------------------- validity


async def test_every_profile_lasts_exactly_its_nominal_length_counting_not_after(signing: Signing) -> None:
    a = signing.authority
    assert inclusive_length(a.root_certificate) == profiles.ROOT_VALIDITY
    assert inclusive_length(a.ca_certificate) == profiles.ISSUING_VALIDITY
    assert inclusive_length(a.responder_certificate) == HIERARCHY.responder_validity
    assert inclusive_length(a.tsa_certificate) == TSA_VALIDITY
    assert inclusive_length(a.seal_certificate) == SEAL_VALIDITY
    # an issued 2-year subscriber certificate ends the second before its second anniversary
    cert = cert_of(await issue(signing))
    assert cert.not_valid_after_utc + SECOND == pki.add_years(cert.not_valid_before_utc, 2)


@pytest.mark.parametrize("years", [1, 2, 3])
async def test_a_subscriber_certificate_of_n_years_ends_one_second_before_the_anniversary(
    signing: Signing, years: int
) -> None:
    a = signing.authority
    at = signing.clock.now().replace(microsecond=250_000)  # a fraction of a second is not a longer validity
    not_before, not_after = profiles.subscriber_validity(at, years, a.ca_certificate)
    who = profiles.Subscriber("Nguyễn Thị Bình", "001099012345")
    cert = profiles.subscriber(
        pki.new_key().public_key(), who, pki.new_serial(), not_before, not_after,
        a.ca_key, a.ca_certificate, a.urls, a.policy_oid,
    )  # fmt: skip
    anniversary = pki.add_years(at.replace(microsecond=0), years)
    assert cert.not_valid_before_utc == at.replace(microsecond=0)
    assert cert.not_valid_after_utc == anniversary - SECOND
    assert inclusive_length(cert) == anniversary - cert.not_valid_before_utc
    with pytest.raises(ValueError):
        profiles.subscriber_validity(at, 4, a.ca_certificate)


# --------------------------------------------------------------------------- the policy tree


def openssl_verify(tmp: Path, leaf: x509.Certificate, a: Authority, at: float, *policy_args: str) -> str:
    """``openssl verify`` of ``leaf`` against kyso's root at the service clock's time ``at``."""
    for name, c in (("root", a.root_certificate), ("issuing", a.ca_certificate), ("leaf", leaf)):
        (tmp / f"{name}.pem").write_text(pki.pem(c))
    done = subprocess.run(
        ["openssl", "verify", "-x509_strict", "-attime", str(int(at)), *policy_args, "-CAfile", str(tmp / "root.pem"),
         "-untrusted", str(tmp / "issuing.pem"), str(tmp / "leaf.pem")],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    return done.stdout + done.stderr


async def test_openssl_walks_one_policy_tree_to_every_certificate_the_issuing_ca_issues(
    signing: Signing, tmp_path: Path
) -> None:
    a = signing.authority
    issued = {
        "subscriber": cert_of(await issue(signing)),
        "seal": a.seal_certificate,
        "timestamp authority": a.tsa_certificate,
        "ocsp responder": a.responder_certificate,
    }
    for what, cert in issued.items():
        ok = openssl_verify(tmp_path, cert, a, signing.clock.time(), "-explicit_policy", "-policy", DEV_POLICY_OID)
        assert "leaf.pem: OK" in ok, (what, ok)
        # the same check fails for a policy nobody asserts: the tree is what openssl walked
        refused = openssl_verify(
            tmp_path, cert, a, signing.clock.time(), "-explicit_policy", "-policy", "2.25.250634348.9.9"
        )
        assert "leaf.pem: OK" not in refused and "policy" in refused.lower(), (what, refused)


async def test_an_issuing_ca_without_the_configured_policy_is_refused(store: Any, clock: Any) -> None:
    first = Authority(store.collection("authority"), SecretBox(MASTER), HIERARCHY, clock)
    await first.load()
    other = dataclasses.replace(HIERARCHY, policy_oid="2.25.250634348.7.1")
    with pytest.raises(ValueError, match="CA_POLICY_OID"):
        await Authority(store.collection("authority"), SecretBox(MASTER), other, clock).load()


# --------------------------------------------------------------------------- the provider's seal


async def test_the_seal_names_its_legal_person_as_etsi_and_vietnamese_cas_do(store: Any, clock: Any) -> None:
    a = Authority(store.collection("authority"), SecretBox(MASTER), PUBLIC, clock)
    await a.load()
    seal = a.seal_certificate
    subject = seal.subject
    assert subject.get_attributes_for_oid(NameOID.ORGANIZATION_IDENTIFIER)[0].value == f"NTRVN-{TAX_CODE}"
    assert subject.get_attributes_for_oid(NameOID.USER_ID)[0].value == f"MST:{TAX_CODE}"
    assert subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == PUBLIC.organisation
    assert certificate_findings(pki.der(seal)) == ""
    # EN 319 412-3 (legal person): no error; the warning left is nonRepudiation beside digitalSignature
    assert etsi_findings(pki.der(seal), "NCP-LEGAL-PERSON-CERTIFICATE", "ERROR") == ""
    ekus = seal.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    assert list(ekus.value) == list(profiles.SIGNER_EKUS) and not ekus.critical


async def test_etsi_accepts_the_signer_ekus_of_subscriber_certificates(store: Any, clock: Any) -> None:
    a = Authority(store.collection("authority"), SecretBox(MASTER), PUBLIC, clock)
    await a.load()
    not_before, not_after = profiles.subscriber_validity(clock.now(), 3, a.ca_certificate)
    cert = profiles.subscriber(
        pki.new_key().public_key(), profiles.Subscriber("Nguyễn Thị Bình", "001099012345"), pki.new_serial(),
        not_before, not_after, a.ca_key, a.ca_certificate, a.urls, a.policy_oid,
    )  # fmt: skip
    findings = etsi_findings(pki.der(cert), "NCP-NATURAL-PERSON-CERTIFICATE")
    # the natural-person subject rules (givenName/surname) are the subscriber profile's own question;
    # nothing the linter says concerns the extended key usage
    assert "extKeyUsage" not in findings and "eku" not in findings.lower(), findings
    assert certificate_findings(pki.der(cert)) == ""


def test_a_tax_code_is_ten_digits_with_an_optional_branch() -> None:
    assert profiles.organisation_identifier("0100109106-001") == "NTRVN-0100109106-001"
    for bad in ("", "12345", "0100109106-1", "NTRVN-0100109106", "01001091061"):
        with pytest.raises(ValueError):
            profiles.organisation_identifier(bad)
    with pytest.raises(ValidationError):
        SigningSettings(PROVIDER_TAX_CODE="MST 0100109106")


async def test_provider_certificates_of_an_older_profile_are_certified_again_and_still_answered_for(
    signing: Signing, store: Any, clock: Any
) -> None:
    coll = store.collection("authority")
    a = signing.authority
    old_seal, old_tsa = a.seal_certificate, a.tsa_certificate
    for name in (SEAL, TSA, "ocsp-responder"):  # as stored before profiles were versioned
        await coll.update({"_id": name}, {"$unset": {"profile": ""}})
    again = Authority(coll, SecretBox(MASTER), HIERARCHY, clock)
    await again.load()
    assert again.seal_certificate.serial_number != old_seal.serial_number
    assert again.seal_certificate.public_key() == old_seal.public_key()  # the same key, certified again
    assert again.tsa_certificate.public_key() == old_tsa.public_key()
    assert again.responder_certificate != a.responder_certificate
    # documents sealed or stamped before name the old certificates: the responder still knows them
    for old in (old_seal, old_tsa, again.seal_certificate, again.tsa_certificate):
        assert again.own_certificate(old.serial_number) == old
    for name in (SEAL, TSA):
        doc = await coll.get(name)
        assert doc is not None and doc["profile"] == PROFILE
    third = Authority(coll, SecretBox(MASTER), HIERARCHY, clock)
    await third.load()
    assert third.seal_certificate == again.seal_certificate  # certified once, not on every start
    assert (await coll.get(ROOT)) is not None


# --------------------------------------------------------------------------- served under /pki/


async def test_the_provider_certificates_are_served_as_der_and_documented(signing: Signing) -> None:
    a = signing.authority
    app = FastAPI()
    app.include_router(pki_api.router(a, signing.crls, signing.responder, signing.stamper, signing.clock))
    served = {
        "/pki/provider/seal.cer": a.seal_certificate,
        "/pki/provider/tsa.cer": a.tsa_certificate,
        "/pki/provider/ocsp-responder.cer": a.responder_certificate,
    }
    paths = app.openapi()["paths"]
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://pki.test") as http:
        for path, cert in served.items():
            r = await http.get(path)
            assert r.status_code == 200 and r.headers["content-type"] == "application/pkix-cert", path
            assert x509.load_der_x509_certificate(r.content) == cert
            assert certificate_findings(r.content) == ""
            again = await http.get(path, headers={"If-None-Match": r.headers["etag"]})
            assert again.status_code == 304 and not again.content
            assert "application/pkix-cert" in paths[path]["get"]["responses"]["200"]["content"]
