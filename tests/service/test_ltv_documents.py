"""Long-term signatures that strict validators accept (ETSI EN 319 102-1 as the EU DSS library applies it).

Every PAdES B-LT/B-LTA document kyso makes — the sealed service contract, the acceptance record the
subscriber signs, a relying party's PDF at B-LT and at B-LTA — is made some hours after the CA last
published its CRLs (they are published on status changes and when due, not on issuance), by a
certificate issued in between, as in production. For each document:

- every revocation answer it carries, read from its bytes with asn1crypto, was issued no earlier than
  the certificate it covers (``thisUpdate`` ≥ ``notBefore``), and the signer's certificate is covered;
- the EU DSS library (tests/tools/dss; default policy, offline, the kyso root as the only trust anchor)
  rates each signature TOTAL_PASSED and each timestamp PASSED.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest
from pyhanko.pdf_utils.reader import PdfFileReader

from ades_check import dss_reports, revinfo
from kyso_contracts import SignatureCompleted
from kyso_kit.timeutil import as_utc
from kyso_signing.documents import layout as documents
from kyso_signing.pki import keys as pki

from .test_ca import PIN, issue
from .test_pdfs import sealed_contract
from .test_remote_signing import World, sms_code
from .test_signing_rules import ALICE, Signing

HOURS_AFTER_CRL = 5
"""Issuance this long after the CA's last CRL (it republishes when a third of 24 h is left: 16 h)."""


@pytest.fixture
async def world(store: Any, clock: Any) -> World:
    """The signing service, its CA made now less the hours before issuance: the OCSP responder's answers
    carry the machine's time as producedAt (``cryptography`` sets it), so the service clock must reach
    the real time when the documents are signed, as it does in production."""
    clock.set(datetime.now(UTC).replace(microsecond=0) - timedelta(hours=HOURS_AFTER_CRL, seconds=40))
    s = Signing(store, clock)
    await s.start()
    w = World(s)
    await w.start()
    return w


async def acceptance_record(world: World, cert: dict[str, Any]) -> bytes:
    s = world.s
    record = await s.activation.acceptance_record(ALICE, cert["_id"])
    request = await s.remote.of_subscriber(ALICE, record.signing_request_id or "")
    await s.remote.when_sms_otp_verified_record(sms_code(world, request))
    await s.remote.confirm(ALICE, request["_id"], PIN)
    [done] = [e for e in s.store.of_type(SignatureCompleted) if e.data.request_id == request["_id"]]
    await s.acceptance.when_signature_completed_finish(done)
    return await s.acceptance.file(ALICE, cert["_id"], signed=True)


async def relying_party_pdf(world: World, level: str) -> bytes:
    s = world.s
    client, _ = await world.relying_party(f"portal-{level}")
    who = {"full_name": "Trần Văn Bảo", "citizen_id": "001190000999", "date_of_birth": "1991-02-03"}
    order = {"order_id": "x", "package_code": "P", "validity_years": 1, "amount_vnd": 1, "subscriber": who}
    pdf = documents.service_contract("f" * 32, "Cổng hợp đồng", order, s.clock.now()).pdf
    req = await s.pdfs.submit(
        client, pdf, label="hop-dong.pdf", description="Ký hợp đồng", level=level, reason=None,
        account_id=ALICE.account_id, certificate_id=None, client_address=None,
    )  # fmt: skip
    await s.remote.when_sms_otp_verified_record(sms_code(world, req))
    await s.remote.confirm(ALICE, req["_id"], PIN)
    return await s.pdfs.signed_pdf(client, req["_id"])


async def long_term_documents(world: World) -> dict[str, bytes]:
    """Each kind of B-LT/B-LTA document kyso makes, signed by a certificate issued after the last CRL."""
    world.s.clock.advance(hours=HOURS_AFTER_CRL)
    cert = await issue(world.s)
    world.s.clock.advance(seconds=20)  # the subscriber opens the app and confirms
    return {
        "sealed contract": await sealed_contract(world.s, cert),
        "acceptance record": await acceptance_record(world, cert),
        "relying party B-LT": await relying_party_pdf(world, "B-LT"),
        "relying party B-LTA": await relying_party_pdf(world, "B-LTA"),
    }


def signer_subjects(pdf: bytes) -> list[str]:
    reader = PdfFileReader(BytesIO(pdf))
    return [s.signer_cert.subject.human_friendly for s in reader.embedded_signatures if s.sig_object_type == "/Sig"]


async def test_every_revocation_answer_is_issued_after_the_certificate_it_covers(world: World) -> None:
    docs = await long_term_documents(world)
    published = [as_utc(d["this_update"]) for d in [await world.s.crls.current(w) for w in ("issuing", "root")] if d]
    assert max(published) < world.s.clock.now() - timedelta(hours=HOURS_AFTER_CRL - 1)  # no CRL since issuance
    infos = {name: await asyncio.to_thread(revinfo, pdf) for name, pdf in docs.items()}
    early = {name: info.issued_before_certificate() for name, info in infos.items()}
    assert not any(early.values()), early
    for name, info in infos.items():
        covered = {c.subject.human_friendly for _, c, _ in info.coverage()}
        for subject in signer_subjects(docs[name]):
            assert subject in covered, (name, subject, covered)  # the check above is not vacuous
        assert info.ocsps, name  # the status at signing time, from the OCSP responder


async def test_the_eu_dss_validator_accepts_every_long_term_document(world: World, tmp_path: Path) -> None:
    docs = await long_term_documents(world)
    root = pki.der(world.s.authority.root_certificate)
    reports = await asyncio.to_thread(dss_reports, docs, root, None, tmp_path)  # validated now
    verdicts = {
        name: (
            [(s["indication"], s["subIndication"], s["format"]) for s in r["signatures"]],
            [(t["indication"], t["subIndication"]) for t in r["timestamps"]],
        )
        for name, r in reports.items()
    }
    for name, r in reports.items():
        assert r["signatures"], (name, r)
        for s in r["signatures"]:
            assert s["indication"] == "TOTAL_PASSED", (name, s, verdicts)
        for t in r["timestamps"]:
            assert t["indication"] == "PASSED", (name, t, verdicts)
    assert reports["relying party B-LT"]["signatures"][0]["format"] == "PAdES-BASELINE-LT"
    for name in ("sealed contract", "acceptance record", "relying party B-LTA"):
        assert reports[name]["signatures"][0]["format"] == "PAdES-BASELINE-LTA", (name, verdicts)
