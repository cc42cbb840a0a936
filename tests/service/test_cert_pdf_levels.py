"""``kyso_client.pdf`` names the PAdES level each signature actually reaches (ETSI EN 319 142-1):
B-B without a signature timestamp, B-T with one, B-LT once validation data (a DSS) follows it, B-LTA
once a document timestamp covers that DSS. The PDFs are made by pyHanko itself at each level, with
kyso's seal key, TSA, chain and CRLs, and checked through the client's own fetch of /pki/."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from io import BytesIO
from typing import Any

import httpx
import pytest
from asn1crypto import keys
from fpdf import FPDF
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign import fields, signers
from pyhanko_certvalidator.registry import SimpleCertificateStore

from kyso_client.pdf import validate_pdf
from kyso_kit.clock import FakeClock
from kyso_signing.documents import ltv, pades
from kyso_signing.pki import keys as pki
from kyso_signing.pki.crl import ISSUING, ROOT

from .test_signing_rules import Signing

BASE = "http://pki.test"


@pytest.fixture
def clock() -> FakeClock:
    """The real time: the client validates at "now", so the CRLs must be current."""
    return FakeClock(datetime.now(UTC).replace(microsecond=0))


@pytest.fixture
async def signing(store: Any, clock: FakeClock) -> Signing:
    s = Signing(store, clock)
    await s.start()
    return s


def blank_pdf() -> bytes:
    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("helvetica", size=12)
    pdf.cell(text="PAdES levels")
    return bytes(pdf.output())


def sign(pdf: bytes, s: Signing, trust: ltv.Trust, level: str, field: str) -> bytes:
    """``pdf`` signed by the provider's seal key at ``level``, the way any pyHanko integrator would."""
    a = s.authority
    signer = signers.SimpleSigner(
        signing_cert=ltv.asn1(a.seal_certificate),
        signing_key=keys.PrivateKeyInfo.load(pki.key_to_der(a.seal_key)),
        cert_registry=SimpleCertificateStore.from_certs([ltv.asn1(a.ca_certificate), ltv.asn1(a.root_certificate)]),  # type: ignore[no-untyped-call]
    )
    meta: dict[str, Any] = {"field_name": field, "subfilter": fields.SigSeedSubFilter.PADES, "md_algorithm": "sha256"}
    if level in ("B-LT", "B-LTA"):
        meta |= {"embed_validation_info": True, "validation_context": trust.context()}
    if level == "B-LTA":
        meta["use_pades_lta"] = True
    out = signers.sign_pdf(
        IncrementalPdfFileWriter(BytesIO(pdf)),
        signers.PdfSignatureMetadata(**meta),
        signer=signer,
        timestamper=None if level == "B-B" else pades.LocalTimeStamper(s.stamper),
    )
    return out.getvalue()


async def pki_client(s: Signing) -> httpx.AsyncClient:
    """What kyso's /pki/ endpoints serve: the CA certificates and the current CRLs."""
    served = {
        "/pki/ca/root.cer": pki.der(s.authority.root_certificate),
        "/pki/ca/issuing.cer": pki.der(s.authority.ca_certificate),
    }
    for which, path in ((ISSUING, "/pki/crl/issuing.crl"), (ROOT, "/pki/crl/root.crl")):
        doc = await s.crls.current(which)
        assert doc is not None
        served[path] = bytes(doc["der"])
    return httpx.AsyncClient(transport=httpx.MockTransport(lambda r: httpx.Response(200, content=served[r.url.path])))


@pytest.mark.parametrize("level", ["B-B", "B-T", "B-LT", "B-LTA"])
async def test_each_signature_is_labelled_with_the_level_it_carries(signing: Signing, level: str) -> None:
    trust = await signing.papers.trust()
    pdf = await asyncio.to_thread(sign, blank_pdf(), signing, trust, level, "Sig1")
    async with await pki_client(signing) as http:
        check = await validate_pdf(pdf, BASE, http)
    assert check.level == f"PAdES {level}"  # the old labelling called a B-B signature "PAdES B-T"
    assert check.levels == [f"PAdES {level}"]
    assert check.signers == [f"{signing.authority.h.organisation} Contract Seal"]


async def test_a_document_is_only_as_strong_as_its_weakest_signature(signing: Signing) -> None:
    trust = await signing.papers.trust()
    first = await asyncio.to_thread(sign, blank_pdf(), signing, trust, "B-B", "First")
    both = await asyncio.to_thread(sign, first, signing, trust, "B-LTA", "Second")
    async with await pki_client(signing) as http:
        check = await validate_pdf(both, BASE, http)
    # the document timestamp covers the first signature too, but gives it no signature timestamp
    assert check.level == "PAdES B-B"
    assert check.levels == ["PAdES B-B", "PAdES B-LTA"]
    assert check.document_timestamps == 1 and check.has_dss
