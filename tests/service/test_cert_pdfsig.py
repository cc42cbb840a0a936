"""Poppler's pdfsig (NSS underneath, as in Okular, Evince and other poppler-based viewers) sees the
signatures kyso makes as trusted once kyso's root is trusted in an NSS database: the subscriber's
(the acceptance record, signed through remote signing) and the provider's seal (the contract)."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from kyso_contracts import AcceptanceRecordSigned, SignatureCompleted
from kyso_signing.pki import keys as pki

from .test_ca import PIN, issue
from .test_pdfs import sealed_contract
from .test_remote_signing import World, sms_code
from .test_signing_rules import ALICE, Signing

pytestmark = pytest.mark.skipif(
    shutil.which("pdfsig") is None or shutil.which("certutil") is None,
    reason="poppler-utils and libnss3-tools (deploy/bootstrap.sh installs them)",
)


@pytest.fixture
async def world(store: Any, clock: Any) -> World:
    w = World(Signing(store, clock))
    await w.s.start()
    await w.start()
    return w


def nss_db(where: Path, root_pem: str | None) -> str:
    """A fresh NSS database whose only trust is kyso's root (as a relying party configures a viewer), or
    with no trust at all."""
    where.mkdir()
    db = f"sql:{where}"
    subprocess.run(["certutil", "-N", "-d", db, "--empty-password"], check=True, capture_output=True, timeout=30)
    if root_pem is None:
        return db
    (where / "root.pem").write_text(root_pem)
    subprocess.run(
        ["certutil", "-A", "-d", db, "-n", "kyso root", "-t", "C,C,C", "-i", str(where / "root.pem")],
        check=True,
        capture_output=True,
        timeout=30,
    )
    return db


def pdfsig(pdf: Path, db: str) -> str:
    """pdfsig's report; no online OCSP (the test has no server), the embedded data and NSS's chain only."""
    done = subprocess.run(
        ["pdfsig", "-nssdir", db, "-no-ocsp", str(pdf)], capture_output=True, text=True, timeout=60, check=False
    )
    return done.stdout + done.stderr


async def signed_acceptance_record(world: World, cert: dict[str, Any]) -> bytes:
    remote, acceptance = world.s.remote, world.s.acceptance
    record = await world.s.activation.acceptance_record(ALICE, cert["_id"])
    request = await remote.of_subscriber(ALICE, record.signing_request_id or "")
    await remote.when_sms_otp_verified_record(sms_code(world, request))
    await remote.confirm(ALICE, request["_id"], PIN)
    [completed] = [e for e in world.s.store.of_type(SignatureCompleted) if e.data.request_id == request["_id"]]
    await acceptance.when_signature_completed_finish(completed)
    assert world.s.store.of_type(AcceptanceRecordSigned)
    return await acceptance.file(ALICE, cert["_id"], signed=True)


async def test_pdfsig_trusts_the_subscribers_signature_and_the_providers_seal(
    world: World,
    tmp_path: Path,
) -> None:
    cert = await issue(world.s)
    db = await asyncio.to_thread(nss_db, tmp_path / "nss", pki.pem(world.s.authority.root_certificate))
    reports: dict[str, str] = {}
    for name, pdf in (
        ("acceptance", await signed_acceptance_record(world, cert)),
        ("contract", await sealed_contract(world.s, cert)),
    ):
        path = tmp_path / f"{name}.pdf"
        path.write_bytes(pdf)
        reports[name] = await asyncio.to_thread(pdfsig, path, db)
        print(f"--- pdfsig {name}.pdf\n{reports[name]}")
    # the control: without kyso's root in the database, the same signatures are not trusted
    empty = await asyncio.to_thread(nss_db, tmp_path / "empty", None)
    untrusted = await asyncio.to_thread(pdfsig, tmp_path / "acceptance.pdf", empty)
    [block] = signature_blocks(untrusted)
    assert "Signature is Valid." in block and "Certificate is Trusted." not in block, block
    for name, report in reports.items():
        signatures = signature_blocks(report)
        assert signatures, report  # pdfsig 22.12 checks /Sig signatures; it cannot check document timestamps
        for block in signatures:
            assert "Signature Validation: Signature is Valid." in block, (name, block)
            assert "Certificate Validation: Certificate is Trusted." in block, (name, block)


def signature_blocks(report: str) -> list[str]:
    """pdfsig's paragraph for each CAdES signature (document timestamps left out)."""
    blocks = report.split("Signature #")[1:]
    return [b for b in blocks if "Signature Type: ETSI.CAdES.detached" in b]
