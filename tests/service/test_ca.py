"""The certificate authority with in-memory fakes: profiles, CRLs and OCSP answers checked by pkilint,
revocation, suspension, expiry and renewal, and every refusal leaving everything as it was."""

from __future__ import annotations

import hashlib
import subprocess
from datetime import timedelta
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from kyso_contracts import (
    CertActivated,
    CertExpired,
    CertIssued,
    CertResumed,
    CertRevoked,
    CertSuspended,
    OrganisationFacts,
    OtpPurpose,
    SmsOtpVerified,
)
from kyso_kit.auth import Principal
from kyso_kit.errors import Conflict, Forbidden, Invalid, NotFound
from kyso_signing.pki import crl as crl_module
from kyso_signing.pki import keys as pki
from kyso_signing.pki import profiles
from kyso_signing.pki.keys import KeyAlgorithm
from kyso_signing.settings import DEV_POLICY_OID
from pkilint_check import certificate_findings, crl_findings, ocsp_findings

from .conftest import delivered
from .test_signing_rules import ALICE, Signing

OPERATOR = Principal("acct-op", roles=frozenset({"operator"}))
MALLORY = Principal("acct-mallory")
PIN = "246810"


@pytest.fixture
async def signing(store: Any, clock: Any) -> Signing:
    s = Signing(store, clock)
    await s.start()
    return s


async def issue(
    signing: Signing,
    order_id: str = "order-1",
    *,
    algorithm: str = "ecdsa-p256",
    renews: str | None = None,
    activate: bool = True,
    **order_fields: Any,
) -> dict[str, Any]:
    """An order through payment, consent and (optionally) activation; the certificate's document."""
    c = signing.contracts
    order = signing.order(order_id=order_id).model_copy(
        update={"key_algorithm": algorithm, "renews_certificate_id": renews, **order_fields}
    )
    await c.when_order_placed_remember_order(delivered(order, signing.clock))
    await c.when_payment_confirmed_prepare_contract(delivered(signing.paid(order_id=order_id), signing.clock))
    contract = await c.for_order(ALICE, order_id)
    consent = signing.consent(contract.contract_id, contract.sha256, ch=f"ch-{order_id}")
    await c.when_sms_otp_verified_sign_contract(delivered(consent, signing.clock))
    doc = await c.certs.find_one({"order_id": order_id})
    assert doc is not None and doc["status"] == "pending_activation"
    if activate:
        await signing.activation.activate(ALICE, doc["_id"], PIN)
        [activated] = [e for e in signing.store.of_type(CertActivated) if e.data.certificate_id == doc["_id"]]
        await signing.lifecycle.when_cert_activated_supersede_previous(activated)
    got = await c.certs.get(doc["_id"])
    assert got is not None
    return dict(got)


def cert_of(doc: dict[str, Any]) -> x509.Certificate:
    return x509.load_pem_x509_certificate(doc["certificate"]["certificate_pem"].encode())


def ocsp_request(cert: x509.Certificate, issuer: x509.Certificate, nonce: bytes | None = None) -> bytes:
    b = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA1())
    if nonce is not None:
        b = b.add_extension(x509.OCSPNonce(nonce), critical=False)
    return b.build().public_bytes(serialization.Encoding.DER)


async def status_of(signing: Signing, cert: x509.Certificate, nonce: bytes | None = None) -> ocsp.OCSPResponse:
    answer = await signing.responder.respond(ocsp_request(cert, signing.authority.ca_certificate, nonce))
    resp = ocsp.load_der_ocsp_response(answer.der)
    if resp.response_status == ocsp.OCSPResponseStatus.SUCCESSFUL:
        assert ocsp_findings(answer.der) == ""
        resp.certificates[0].verify_directly_issued_by(signing.authority.ca_certificate)
    return resp


async def current_crl(signing: Signing, which: str = crl_module.ISSUING) -> x509.CertificateRevocationList:
    doc = await signing.crls.current(which)
    assert doc is not None
    crl = x509.load_der_x509_crl(bytes(doc["der"]))
    assert crl_findings(bytes(doc["der"]), arl=which == crl_module.ROOT) == ""
    issuer = signing.authority.root_certificate if which == crl_module.ROOT else signing.authority.ca_certificate
    assert crl.is_signature_valid(issuer.public_key())  # type: ignore[arg-type]
    return crl


def crl_number(crl: x509.CertificateRevocationList) -> int:
    return crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number


# --------------------------------------------------------------------------- profiles


@pytest.mark.parametrize("algorithm", [a.value for a in KeyAlgorithm])
async def test_every_certificate_kind_is_lint_clean_and_chains(signing: Signing, algorithm: str) -> None:
    doc = await issue(signing, algorithm=algorithm)
    a = signing.authority
    root, ca, responder, cert = a.root_certificate, a.ca_certificate, a.responder_certificate, cert_of(doc)
    seal = a.seal_certificate  # the provider's contract seal
    for c in (root, ca, responder, cert, seal):
        assert certificate_findings(pki.der(c)) == "", c.subject.rfc4514_string()
    ca.verify_directly_issued_by(root)
    responder.verify_directly_issued_by(ca)
    seal.verify_directly_issued_by(ca)
    cert.verify_directly_issued_by(ca)
    # the Vietnamese subscriber profile
    assert cert.subject.get_attributes_for_oid(NameOID.USER_ID)[0].value == "CCCD:001099012345"
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "Nguyễn Thị Bình"
    country = cert.subject.get_attributes_for_oid(NameOID.COUNTRY_NAME)[0]
    assert country.value == "VN" and country._type.name == "PrintableString"
    ku = cert.extensions.get_extension_for_class(x509.KeyUsage)
    assert ku.critical and ku.value.digital_signature and ku.value.content_commitment and not ku.value.key_cert_sign
    ekus = list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    assert ekus == [ExtendedKeyUsageOID.EMAIL_PROTECTION, profiles.DOCUMENT_SIGNING]  # NSS and Acrobat accept it
    bc = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert bc.critical and not bc.value.ca
    [policy] = cert.extensions.get_extension_for_class(x509.CertificatePolicies).value
    assert policy.policy_identifier.dotted_string == DEV_POLICY_OID
    [dp] = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    assert dp.full_name is not None and dp.full_name[0].value == a.urls.issuing_crl
    access = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    aia = {d.access_method._name: d.access_location.value for d in access}
    assert aia == {"OCSP": a.urls.ocsp, "caIssuers": a.urls.issuing_certificate}
    # RFC 5280 §4.1.2.5 counts notAfter as valid: two years end one second before the anniversary
    assert cert.not_valid_after_utc == pki.add_years(cert.not_valid_before_utc, 2) - timedelta(seconds=1)
    assert pki.algorithm_of(pki.public_key_of(cert)) == KeyAlgorithm(algorithm)
    assert doc["certificate"]["key_algorithm"] == algorithm
    # the responder is a delegated one (RFC 6960 §4.2.2.2)
    assert list(responder.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [
        ExtendedKeyUsageOID.OCSP_SIGNING
    ]
    responder.extensions.get_extension_for_class(x509.OCSPNoCheck)


@pytest.mark.parametrize("kind", ["organisation", "staff"])
async def test_organisation_certificates_name_the_organisation_and_its_tax_code(signing: Signing, kind: str) -> None:
    org = OrganisationFacts(
        name="Công ty TNHH Đèn Sáng",
        tax_code="0100109106-001",
        address="1 Tràng Tiền, Hà Nội",
        province="Hà Nội",
        legal_representative="Trần Văn Sáng",
    )
    doc = await issue(signing, f"order-{kind}", certificate_kind=kind, organisation=org)
    cert = cert_of(doc)
    assert certificate_findings(pki.der(cert)) == "", cert.subject.rfc4514_string()
    cert.verify_directly_issued_by(signing.authority.ca_certificate)
    uids = [a.value for a in cert.subject.get_attributes_for_oid(NameOID.USER_ID)]
    assert sorted(uids) == ["CCCD:001099012345", "MST:0100109106-001"]
    assert cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == org.name
    cn = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    assert cn == (org.name if kind == "organisation" else "Nguyễn Thị Bình")
    # the contract names the organisation; the acceptance record reads both identifiers from the certificate
    contract = await signing.papers.get(doc["contract"]["sha256"])
    assert contract is not None and "0100109106-001" in pdf_text(contract)
    record = await signing.papers.get(doc["acceptance"]["sha256"])
    assert record is not None and "MST:0100109106-001" in pdf_text(record) and org.name in pdf_text(record)


def pdf_text(pdf: bytes) -> str:
    """The text poppler's pdftotext reads (an independent reader)."""
    done = subprocess.run(["pdftotext", "-", "-"], input=pdf, capture_output=True, check=True)
    return done.stdout.decode()


def test_single_label_hosts_are_refused_for_pki_urls() -> None:
    for bad in ("http://localhost:8003", "ftp://pki.example.vn", "pki"):
        with pytest.raises(ValueError):
            profiles.Urls(bad)
    profiles.Urls("http://[::1]:8003")
    profiles.Urls("https://pki.kyso.vn")


async def test_a_public_key_is_never_certified_twice(signing: Signing, monkeypatch: pytest.MonkeyPatch) -> None:
    same = pki.new_key()
    draws = iter([same, same, pki.new_key()])  # the second issuance draws the first key again, then a new one
    monkeypatch.setattr(pki, "new_key", lambda algorithm=KeyAlgorithm.ECDSA_P256: next(draws))
    first = await issue(signing, "order-1")
    second = await issue(signing, "order-2")
    assert second["spki_sha256"] != first["spki_sha256"]
    assert pki.spki_sha256(pki.public_key_of(cert_of(second))) == second["spki_sha256"]


# --------------------------------------------------------------------------- CRL


async def test_crls_are_published_at_once_lint_clean_and_their_numbers_only_grow(signing: Signing) -> None:
    crl, arl = await current_crl(signing), await current_crl(signing, crl_module.ROOT)
    assert len(crl) == 0 and len(arl) == 0
    n0 = crl_number(crl)
    doc = await issue(signing)
    await signing.crls.refresh()
    assert crl_number(await current_crl(signing)) == n0  # nothing changed: nothing republished
    await signing.lifecycle.operator_act(OPERATOR, doc["_id"], "revoke", "keyCompromise", None)
    crl = await current_crl(signing)
    assert crl_number(crl) > n0
    entry = crl.get_revoked_certificate_by_serial_number(int(doc["serial_number"], 16))
    assert entry is not None
    assert entry.extensions.get_extension_for_class(x509.CRLReason).value.reason == x509.ReasonFlags.key_compromise
    # the schedule: a third of the validity left → a new CRL with a higher number
    before = crl_number(crl)
    signing.clock.advance(hours=17)
    assert await signing.crls.refresh() == 2
    assert crl_number(await current_crl(signing)) > before
    # a publisher that drew an older number and finishes last never replaces the newer CRL
    doc_now = await signing.crls.current(crl_module.ISSUING)
    assert doc_now is not None
    late = await signing.crls._store("issuing", doc_now["number"] - 1, b"old", signing.clock.now(), "x", 0)
    assert not late and (await signing.crls.current(crl_module.ISSUING) or {}).get("der") == doc_now["der"]


async def test_signatures_embed_the_published_crls_read_once_and_never_a_due_one(
    signing: Signing, monkeypatch: pytest.MonkeyPatch
) -> None:
    def listed(ders: tuple[bytes, ...], serial: str) -> bool:
        issuing = x509.load_der_x509_crl(ders[0])
        return issuing.get_revoked_certificate_by_serial_number(int(serial, 16)) is not None

    doc = await issue(signing)
    first = await signing.crls.evidence()
    assert len(first) == 2 and first[0] == (await signing.crls.current(crl_module.ISSUING) or {}).get("der")
    calls = 0
    real_get = signing.crls.crls.get

    async def counting_get(doc_id: Any) -> Any:
        nonlocal calls
        calls += 1
        return await real_get(doc_id)

    monkeypatch.setattr(signing.crls.crls, "get", counting_get)
    assert await signing.crls.evidence() == first and calls == 0  # reused: no read per signature
    # a revocation this process publishes is in the very next signature's evidence
    await signing.lifecycle.operator_act(OPERATOR, doc["_id"], "revoke", "keyCompromise", None)
    assert listed(await signing.crls.evidence(), doc["serial_number"])
    # a CRL whose renewal is due is republished before it is embedded
    number = crl_number(x509.load_der_x509_crl((await signing.crls.evidence())[0]))
    signing.clock.advance(hours=17)
    renewed = x509.load_der_x509_crl((await signing.crls.evidence())[0])
    assert crl_number(renewed) > number
    assert renewed.next_update_utc is not None and renewed.next_update_utc > signing.clock.now()


# --------------------------------------------------------------------------- OCSP


async def test_ocsp_answers_good_revoked_and_unknown_and_echoes_the_nonce(signing: Signing) -> None:
    doc = await issue(signing)
    cert = cert_of(doc)
    good = await status_of(signing, cert, nonce=b"n" * 16)
    assert good.certificate_status == ocsp.OCSPCertStatus.GOOD
    assert good.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce == b"n" * 16
    assert good.responder_key_hash is not None and good.next_update_utc is not None
    await signing.lifecycle.operator_act(OPERATOR, doc["_id"], "revoke", "affiliationChanged", None)
    revoked = await status_of(signing, cert)
    assert revoked.certificate_status == ocsp.OCSPCertStatus.REVOKED
    assert revoked.revocation_reason == x509.ReasonFlags.affiliation_changed
    assert revoked.revocation_time_utc is not None
    # a serial the CA never issued
    other = x509.CertificateBuilder().subject_name(cert.subject).issuer_name(cert.issuer)
    other = other.public_key(cert.public_key()).serial_number(12345).not_valid_before(cert.not_valid_before_utc)
    never = other.not_valid_after(cert.not_valid_after_utc).sign(signing.authority.ca_key, hashes.SHA256())
    unknown = await status_of(signing, never)
    assert unknown.certificate_status == ocsp.OCSPCertStatus.UNKNOWN
    # the provider's own certificates, issued by the same CA, are known and good (LTV of seals and timestamps)
    for own in (signing.authority.seal_certificate, signing.authority.tsa_certificate):
        assert (await status_of(signing, own)).certificate_status == ocsp.OCSPCertStatus.GOOD


async def test_ocsp_refuses_foreign_issuers_and_garbage(signing: Signing) -> None:
    doc = await issue(signing)
    cert, root = cert_of(doc), signing.authority.root_certificate
    foreign = ocsp.load_der_ocsp_response(
        (await signing.responder.respond(ocsp_request(cert, root))).der  # named under the wrong issuer
    )
    assert foreign.response_status == ocsp.OCSPResponseStatus.UNAUTHORIZED
    for garbage in (
        b"",
        b"\x30\x03\x02\x01\x01",
        b"not der at all",
        ocsp_request(cert, signing.authority.ca_certificate)[:-3],
    ):
        bad = ocsp.load_der_ocsp_response((await signing.responder.respond(garbage)).der)
        assert bad.response_status == ocsp.OCSPResponseStatus.MALFORMED_REQUEST
    too_long = await signing.responder.respond(ocsp_request(cert, signing.authority.ca_certificate, nonce=b"x" * 33))
    assert ocsp.load_der_ocsp_response(too_long.der).response_status == ocsp.OCSPResponseStatus.MALFORMED_REQUEST


async def test_an_unchanged_status_is_answered_from_the_cache_and_a_change_is_seen_at_once(signing: Signing) -> None:
    doc = await issue(signing)
    cert = cert_of(doc)
    body = ocsp_request(cert, signing.authority.ca_certificate)
    first = await signing.responder.respond(body)
    again = await signing.responder.respond(body)
    assert again.der == first.der and signing.responder.hits == 1
    await signing.lifecycle.operator_act(OPERATOR, doc["_id"], "suspend", "unspecified", None)
    held = ocsp.load_der_ocsp_response((await signing.responder.respond(body)).der)
    assert held.certificate_status == ocsp.OCSPCertStatus.REVOKED
    assert held.revocation_reason == x509.ReasonFlags.certificate_hold
    # shortly before nextUpdate a cached answer is made afresh
    signing.clock.advance(minutes=55)
    later = await signing.responder.respond(body)
    assert ocsp.load_der_ocsp_response(later.der).this_update_utc > held.this_update_utc


async def test_the_responder_certificate_renews_itself_when_a_third_of_its_life_is_left(signing: Signing) -> None:
    old = signing.authority.responder_certificate
    signing.clock.advance(hours=20)
    await signing.authority.refresh_responder()
    assert signing.authority.responder_certificate == old
    signing.clock.advance(hours=13)
    await signing.authority.refresh_responder()
    new = signing.authority.responder_certificate
    assert new != old and new.not_valid_after_utc > old.not_valid_after_utc
    assert certificate_findings(pki.der(new)) == ""


# --------------------------------------------------------------------------- lifecycle


def revocation_code(
    signing: Signing, request: Any, *, account: str = ALICE.account_id, binding: str | None = None
) -> SmsOtpVerified:
    return SmsOtpVerified(
        challenge_id=f"ch-{request.request_id[:8]}-{account[-3:]}-{(binding or 'x')[:3]}",
        purpose=OtpPurpose.CERTIFICATE_REVOCATION,
        subject=request.request_id,
        account_id=account,
        phone="+84912345678",
        binding_sha256=binding or request.sha256,
        verified_at=signing.clock.now(),
    )


async def test_a_subscriber_revokes_with_a_code_bound_to_the_request_and_the_key_is_destroyed(signing: Signing) -> None:
    doc = await issue(signing)
    lc, store = signing.lifecycle, signing.store
    with pytest.raises(Forbidden):
        await lc.request(MALLORY, doc["_id"], "revoke", "keyCompromise", None)
    with pytest.raises(Forbidden):
        await lc.request(OPERATOR, doc["_id"], "revoke", "keyCompromise", None)  # operators use their own API
    req = await lc.request(ALICE, doc["_id"], "revoke", "keyCompromise", None)
    assert req.otp.binding_sha256 == hashlib.sha256(req.statement.encode()).hexdigest() == req.sha256
    assert doc["serial_number"] in req.statement
    # a code bound to something else, or verified by someone else, changes nothing
    for wrong in (
        revocation_code(signing, req, binding="f" * 64),
        revocation_code(signing, req, account=MALLORY.account_id),
    ):
        await lc.when_sms_otp_verified_apply_request(delivered(wrong, signing.clock))
    assert not store.of_type(CertRevoked)
    ok = delivered(revocation_code(signing, req), signing.clock)
    await lc.when_sms_otp_verified_apply_request(ok)
    await lc.when_sms_otp_verified_apply_request(ok)  # delivered twice: revoked once
    [revoked] = store.of_type(CertRevoked)
    assert (revoked.data.reason, revoked.data.revoked_by, revoked.causationid) == ("keyCompromise", "subscriber", ok.id)
    after = await signing.contracts.certs.get(doc["_id"])
    assert after is not None and after["status"] == "revoked" and "key" not in after
    view = await signing.certificates.one(ALICE, doc["_id"])
    assert view.status == "revoked" and view.revocation is not None and view.revocation.reason == "keyCompromise"
    with pytest.raises(Conflict, match="already"):
        await lc.request(ALICE, doc["_id"], "revoke", "unspecified", None)


async def test_an_expired_revocation_request_is_not_honoured(signing: Signing) -> None:
    doc = await issue(signing)
    req = await signing.lifecycle.request(ALICE, doc["_id"], "suspend", "unspecified", None)
    signing.clock.advance(minutes=11)
    await signing.lifecycle.when_sms_otp_verified_apply_request(delivered(revocation_code(signing, req), signing.clock))
    assert not signing.store.of_type(CertSuspended)


async def test_suspension_resumes_and_revocation_is_final(signing: Signing) -> None:
    doc = await issue(signing)
    lc, store, cid = signing.lifecycle, signing.store, doc["_id"]
    await lc.operator_act(OPERATOR, cid, "suspend", "unspecified", None)
    crl = await current_crl(signing)
    entry = crl.get_revoked_certificate_by_serial_number(int(doc["serial_number"], 16))
    assert entry is not None
    assert entry.extensions.get_extension_for_class(x509.CRLReason).value.reason == x509.ReasonFlags.certificate_hold
    with pytest.raises(Conflict, match="already suspended"):
        await lc.operator_act(OPERATOR, cid, "suspend", "unspecified", None)
    await lc.operator_act(OPERATOR, cid, "resume", "unspecified", None)
    assert len(await current_crl(signing)) == 0
    assert len(store.of_type(CertSuspended)) == len(store.of_type(CertResumed)) == 1
    with pytest.raises(Conflict, match="suspended"):
        await lc.operator_act(OPERATOR, cid, "resume", "unspecified", None)
    inv = signing.clock.now() - timedelta(days=1)
    await lc.operator_act(OPERATOR, cid, "revoke", "privilegeWithdrawn", inv)
    entry = (await current_crl(signing)).get_revoked_certificate_by_serial_number(int(doc["serial_number"], 16))
    assert entry is not None
    invalidity = entry.extensions.get_extension_for_class(x509.InvalidityDate).value
    assert invalidity.invalidity_date_utc == inv.replace(microsecond=0)
    published = len(store.published)
    for action in ("revoke", "suspend", "resume"):
        with pytest.raises(Conflict):
            await lc.operator_act(OPERATOR, cid, action, "unspecified", None)  # type: ignore[arg-type]
    with pytest.raises(Invalid):
        await lc.request(ALICE, cid, "resume", "unspecified", None)
    with pytest.raises(NotFound):
        await lc.operator_act(OPERATOR, "no-such-certificate", "revoke", "unspecified", None)
    with pytest.raises(Forbidden):
        await lc.operator_act(ALICE, cid, "revoke", "unspecified", None)
    assert len(store.published) == published  # the refusals changed nothing


async def test_certificates_expire_once_at_their_not_after(signing: Signing) -> None:
    doc = await issue(signing)
    assert await signing.lifecycle.expire_due() == 0
    signing.clock.set(cert_of(doc).not_valid_after_utc + timedelta(seconds=1))
    assert await signing.lifecycle.expire_due() == 1
    assert await signing.lifecycle.expire_due() == 0
    [expired] = signing.store.of_type(CertExpired)
    assert expired.data.expired_at == cert_of(doc).not_valid_after_utc
    with pytest.raises(Conflict):
        await signing.lifecycle.operator_act(OPERATOR, doc["_id"], "revoke", "unspecified", None)


async def test_a_renewal_supersedes_the_old_certificate_once_it_is_active(signing: Signing) -> None:
    old = await issue(signing, "order-1")
    signing.clock.advance(days=300)
    new = await issue(signing, "order-2", renews=old["_id"], activate=False)
    assert not signing.store.of_type(CertRevoked)  # the old one serves until the new one is active
    await signing.activation.activate(ALICE, new["_id"], PIN)
    activated = next(e for e in signing.store.of_type(CertActivated) if e.data.certificate_id == new["_id"])
    await signing.lifecycle.when_cert_activated_supersede_previous(activated)
    await signing.lifecycle.when_cert_activated_supersede_previous(activated)
    [revoked] = signing.store.of_type(CertRevoked)
    assert (revoked.data.certificate_id, revoked.data.reason, revoked.data.superseded_by) == (
        old["_id"],
        "superseded",
        new["_id"],
    )
    mine = await signing.certificates.of_account(ALICE, None)
    assert [c.certificate_id for c in mine.certificates] == [new["_id"], old["_id"]]
    assert [c.status for c in mine.certificates] == ["active", "revoked"]
    assert len(signing.store.of_type(CertIssued)) == 2


def _tlv(tag: int, body: bytes) -> bytes:
    n = len(body)
    length = (
        bytes([n])
        if n < 128
        else bytes([0x80 | ((n.bit_length() + 7) // 8)]) + n.to_bytes((n.bit_length() + 7) // 8, "big")
    )
    return bytes([tag]) + length + body


def _children(der: bytes) -> list[bytes]:
    """The TLVs inside one constructed DER value."""
    head = 2 if der[1] < 128 else 2 + (der[1] & 0x7F)
    body, out = der[head:], []
    while body:
        size = body[1] if body[1] < 128 else int.from_bytes(body[2 : 2 + (body[1] & 0x7F)], "big")
        start = 2 if body[1] < 128 else 2 + (body[1] & 0x7F)
        out.append(body[: start + size])
        body = body[start + size :]
    return out


def two_certificate_request(single: bytes) -> bytes:
    """An OCSPRequest naming two certificates (RFC 6960 allows it; ``cryptography`` cannot build one)."""
    [tbs] = _children(single)
    [request_list] = _children(tbs)
    [request] = _children(request_list)
    return _tlv(0x30, _tlv(0x30, _tlv(0x30, request + request)))


async def test_a_request_for_several_certificates_is_a_malformed_request(signing: Signing) -> None:
    doc = await issue(signing)
    two = two_certificate_request(ocsp_request(cert_of(doc), signing.authority.ca_certificate))
    with pytest.raises(NotImplementedError):
        ocsp.load_der_ocsp_request(two)  # what the library does with it
    answer = ocsp.load_der_ocsp_response((await signing.responder.respond(two)).der)
    assert answer.response_status == ocsp.OCSPResponseStatus.MALFORMED_REQUEST


async def test_an_ocsp_request_with_an_unknown_certid_hash_is_malformed_not_a_crash(signing: Signing) -> None:
    doc = await issue(signing)
    der = ocsp_request(cert_of(doc), signing.authority.ca_certificate)
    sha1 = bytes.fromhex("06052b0e03021a")  # the SHA-1 OID inside the CertID
    assert sha1 in der
    odd = der.replace(sha1, bytes.fromhex("06052b0e03020b"))  # 1.3.14.3.2.11: no hash cryptography knows
    answer = ocsp.load_der_ocsp_response((await signing.responder.respond(odd)).der)
    assert answer.response_status == ocsp.OCSPResponseStatus.MALFORMED_REQUEST
