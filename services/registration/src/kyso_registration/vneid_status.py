"""What VNeID shows a citizen about their kyso certificates, asked with a VNeID-signed status query.

VNeID signs ``{"query": "certificate_status", "citizen_id", "issued_at", "nonce"}`` with the key it signs
identity hand-overs with (an identity hand-over is not a status query, nor the other way round: each
payload is validated strictly). The answer is the citizen's orders, newest first, as the registration
status view keeps them — the same view the kyso app shows, so the two never disagree.
"""

from __future__ import annotations

from pydantic import ValidationError

from kyso_kit.clock import Clock
from kyso_kit.errors import Invalid, Rejected, Unauthenticated
from kyso_kit.store import Doc, Store
from kyso_kit.timeutil import as_utc, local

from . import domain
from .schemas import VneidCertificateView, VneidStatusQuery, VneidStatusView
from .views import order_view

CLOSED_UNPAID = {domain.OrderStatus.CANCELLED.value, domain.OrderStatus.ORDER_EXPIRED.value}


class VneidStatus:
    def __init__(self, store: Store, vneid: domain.VneidVerifier, clock: Clock, max_age_seconds: int) -> None:
        self.accounts = store.collection("accounts", events=True)
        self.orders = store.collection("orders", events=True)
        self.vneid = vneid
        self.clock = clock
        self.max_age_seconds = max_age_seconds

    async def init(self) -> None:
        await self.accounts.ensure_index([("citizen_id", 1)])

    def _query(self, assertion: str) -> VneidStatusQuery:
        payload = self.vneid.identity(assertion)
        if payload is None:
            raise Unauthenticated(
                "invalid_vneid_signature",
                "The query is not signed by VNeID",
                "Truy vấn không có chữ ký hợp lệ của VNeID",
            )
        try:
            query = VneidStatusQuery.model_validate(payload)
        except ValidationError as exc:
            raise Invalid(
                "invalid_status_query",
                "The signed payload is not a certificate status query",
                "Nội dung đã ký không phải truy vấn trạng thái chứng thư số",
                details=domain.validation_details(exc),
            ) from None
        if not domain.vneid_fresh(query.issued_at, self.clock.now(), self.max_age_seconds):
            raise Rejected(
                "query_expired", "The VNeID query is too old or from the future", "Truy vấn từ VNeID đã hết hạn"
            )
        return query

    async def answer(self, assertion: str) -> VneidStatusView:
        query = self._query(assertion)
        found: list[Doc] = []
        for acct in await self.accounts.find({"citizen_id": query.citizen_id}, projection={"_id": 1}):
            found += await self.orders.find({"account_id": acct["_id"]})
        shown = [
            o for o in found if not (o["status"] in CLOSED_UNPAID and not (o.get("certificate") or o.get("refunds")))
        ]
        shown.sort(key=lambda o: as_utc(o["placed_at"]), reverse=True)
        return VneidStatusView(
            citizen_id=query.citizen_id, as_of=local(self.clock.now()), certificates=[_certificate(o) for o in shown]
        )


def _certificate(doc: Doc) -> VneidCertificateView:
    v = order_view(doc)
    c = v.certificate
    return VneidCertificateView(
        order_id=v.order_id,
        package_code=v.package_code,
        certificate_kind=v.certificate_kind,
        organisation=v.organisation,
        status=v.status,
        status_vi=v.status_vi,
        serial_number=c.serial_number if c else None,
        not_before=c.not_before if c else None,
        not_after=c.not_after if c else None,
        activated_at=c.activated_at if c else None,
        revoked_at=c.revoked_at if c else None,
        refunded_vnd=sum(r.amount_vnd for r in v.refunds),
    )
