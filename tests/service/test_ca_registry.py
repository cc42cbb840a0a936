"""The CA registry keyed by serial (``pki.registry``): the CRL and OCSP read only it; it learns every
issuance and status change right after the write, catches up from the mark that write left should it
have missed one, never goes back to an older revision, and registers once what was issued before it."""

from __future__ import annotations

from typing import Any

import pytest
from cryptography.x509 import ocsp

from kyso_kit.auth import Principal
from kyso_signing.pki.registry import Entry, Registered

from .test_ca import cert_of, current_crl, issue, signing, status_of  # noqa: F401 - the fixture
from .test_signing_rules import Signing

OPERATOR = Principal("acct-op", roles=frozenset({"operator"}))


async def test_crl_and_ocsp_read_the_registry_not_the_subscribers_record(signing: Signing) -> None:  # noqa: F811
    doc = await issue(signing)
    cert, serial = cert_of(doc), int(doc["serial_number"], 16)
    await signing.lifecycle.operator_act(OPERATOR, doc["_id"], "revoke", "keyCompromise", None)
    assert (await status_of(signing, cert)).certificate_status == ocsp.OCSPCertStatus.REVOKED
    # the subscriber's record forgets the revocation: the CRL and OCSP do not (they never read it)
    await signing.store.collection("certificates").update(
        {"_id": doc["_id"]}, {"$set": {"status": "active", "crl_listed": False}, "$unset": {"revocation": ""}}
    )
    await signing.crls.refresh()
    assert (await current_crl(signing)).get_revoked_certificate_by_serial_number(serial) is not None
    answer = await status_of(signing, cert, nonce=b"n" * 16)  # a fresh answer, not the cached one
    assert answer.certificate_status == ocsp.OCSPCertStatus.REVOKED
    assert answer.revocation_reason is not None and answer.revocation_reason.name == "key_compromise"


async def test_a_change_the_registry_missed_is_caught_up_from_the_mark_on_the_record(
    signing: Signing,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    doc = await issue(signing)
    cert, serial = cert_of(doc), int(doc["serial_number"], 16)
    certs = signing.store.collection("certificates")
    assert await signing.registration.catch_up() == 0  # issuance registered itself at once
    assert "registry_due" not in (await certs.get(doc["_id"]) or {})

    async def down(r: Registered) -> bool:
        raise ConnectionError("the process dies between the two writes")

    monkeypatch.setattr(signing.registry, "record", down)
    moved = await signing.lifecycle.operator_act(OPERATOR, doc["_id"], "suspend", "unspecified", None)
    assert moved["status"] == "suspended" and moved["registry_due"] is True  # marked in the status's own write
    monkeypatch.undo()
    assert (await status_of(signing, cert, nonce=b"a" * 16)).certificate_status == ocsp.OCSPCertStatus.GOOD  # stale
    assert await signing.registration.catch_up() == 1
    assert (await status_of(signing, cert, nonce=b"b" * 16)).certificate_status == ocsp.OCSPCertStatus.REVOKED
    assert (await current_crl(signing)).get_revoked_certificate_by_serial_number(serial) is not None
    assert "registry_due" not in (await certs.get(doc["_id"]) or {})
    assert await signing.registration.catch_up() == 0


async def test_the_registry_never_goes_back_to_an_older_revision(signing: Signing) -> None:  # noqa: F811
    doc = await issue(signing)
    await signing.lifecycle.operator_act(OPERATOR, doc["_id"], "revoke", "superseded", None)
    now: Any = signing.clock.now()
    r = await signing.registry.get(int(doc["serial_number"], 16))
    assert r is not None and r.entry is not None and r.entry.reason == "superseded"
    stale = Registered(r.serial, r.certificate_id, r.not_after, r.revision - 1, None)
    assert await signing.registry.record(stale) is False
    assert await signing.registry.record(Registered(r.serial, r.certificate_id, r.not_after, r.revision, None)) is False
    again = await signing.registry.get(r.serial)
    assert again == r
    newer = Registered(r.serial, r.certificate_id, r.not_after, r.revision + 1, Entry(r.serial, now, "keyCompromise"))
    assert await signing.registry.record(newer) is True


async def test_certificates_issued_before_the_registry_are_registered_once_at_start(signing: Signing) -> None:  # noqa: F811
    doc = await issue(signing)
    cert = cert_of(doc)
    await signing.lifecycle.operator_act(OPERATOR, doc["_id"], "revoke", "cessationOfOperation", None)
    await signing.store.collection("ca_registry").delete_many({})  # as before the registry existed
    await signing.store.collection("pki_state").delete_many({"_id": "registry_backfilled"})
    assert (await status_of(signing, cert, nonce=b"c" * 16)).certificate_status == ocsp.OCSPCertStatus.UNKNOWN
    await signing.registration.init()
    assert (await status_of(signing, cert, nonce=b"d" * 16)).certificate_status == ocsp.OCSPCertStatus.REVOKED
    await signing.store.collection("ca_registry").delete_many({})
    await signing.registration.init()  # once: the mark in pki_state says it is done
    assert await signing.registry.get(int(doc["serial_number"], 16)) is None


async def test_two_operators_at_once_revoke_once_and_the_other_is_told_why(signing: Signing) -> None:  # noqa: F811
    import asyncio

    from kyso_contracts import CertRevoked, CertSuspended
    from kyso_kit.errors import Conflict

    doc = await issue(signing)
    lc = signing.lifecycle
    results = await asyncio.gather(
        lc.operator_act(OPERATOR, doc["_id"], "revoke", "keyCompromise", None),
        lc.operator_act(OPERATOR, doc["_id"], "suspend", "unspecified", None),
        return_exceptions=True,
    )
    refused = [r for r in results if isinstance(r, Exception)]
    assert all(isinstance(r, Conflict) for r in refused), results
    revoked = [e for e in signing.store.of_type(CertRevoked) if e.data.certificate_id == doc["_id"]]
    assert len(revoked) == 1  # suspended first then revoked, or revoked and the suspension refused
    suspended = signing.store.of_type(CertSuspended)
    assert len(refused) == (0 if suspended else 1)
    r = await signing.registry.get(int(doc["serial_number"], 16))
    assert r is not None and r.entry is not None and r.entry.reason == "keyCompromise"
    assert r.revision == 2 + len(suspended)  # issued at 1, one bump per status change
