"""What subscribers (and operators, auditors) read about certificates: one, or all of an account's."""

from __future__ import annotations

from kyso_kit.auth import Principal, ensure_may
from kyso_kit.store import Doc, Store
from kyso_kit.timeutil import as_utc
from kyso_signing.credentials.records import certificates, is_issued, issued_for
from kyso_signing.credentials.views import CertificateList, CertificateView, RevocationInfo
from kyso_signing.pki.authority import Authority

LIST_LIMIT = 100


def _iso(value: object) -> str | None:
    return as_utc(value).isoformat() if value is not None else None  # type: ignore[arg-type]


def certificate_view(doc: Doc, authority: Authority) -> CertificateView:
    c = doc["certificate"]
    r = doc.get("revocation")
    return CertificateView(
        certificate_id=doc["_id"],
        order_id=doc["order_id"],
        status=doc["status"],
        serial_number=c["serial_number"],
        subject_dn=c["subject_dn"],
        not_before=as_utc(c["not_before"]).isoformat(),
        not_after=as_utc(c["not_after"]).isoformat(),
        key_algorithm=c.get("key_algorithm", "ecdsa-p256"),
        certificate_pem=c["certificate_pem"],
        ca_certificate_pem=authority.ca_pem,
        chain_pem=authority.chain_pem,
        revocation=RevocationInfo(
            reason=r["reason"],
            revoked_at=as_utc(r["revoked_at"]).isoformat(),
            revoked_by=r["by"],
            invalidity_date=_iso(r.get("invalidity_date")),
            superseded_by=r.get("superseded_by"),
        )
        if r
        else None,
        suspended_at=_iso((doc.get("suspension") or {}).get("at")),
        renews_certificate_id=(doc.get("order") or {}).get("renews_certificate_id"),
    )


class Certificates:
    def __init__(self, store: Store, authority: Authority) -> None:
        self.certs = certificates(store)
        self.authority = authority

    async def init(self) -> None:
        await self.certs.ensure_index([("account_id", 1)])

    async def one(self, who: Principal, certificate_id: str) -> CertificateView:
        doc = await issued_for(self.certs, who, certificate_id, "read")
        return certificate_view(doc, self.authority)

    async def of_account(self, who: Principal, account_id: str | None) -> CertificateList:
        """The certificates of ``account_id`` (default: the caller's), newest first."""
        owner = account_id or who.account_id
        ensure_may(who, owner, "read")
        docs = await self.certs.find({"account_id": owner})
        issued = sorted((d for d in docs if is_issued(d)), key=lambda d: d["created_at"], reverse=True)
        return CertificateList(certificates=[certificate_view(d, self.authority) for d in issued[:LIST_LIMIT]])
