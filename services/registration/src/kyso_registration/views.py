"""How an order and the packages are shown: pure functions from stored records to response models."""

from __future__ import annotations

from kyso_kit.errors import Invalid
from kyso_kit.store import Doc
from kyso_kit.timeutil import as_utc, local

from . import domain
from .schemas import (
    CertificateSummary,
    OrderView,
    OrganisationSummary,
    PackageList,
    PackageView,
    RefundEntry,
    TimelineEntry,
)

REFUND_VI = {
    "amount_mismatch": "Hoàn tiền: số tiền thanh toán không khớp với đơn hàng",
    "duplicate_payment": "Hoàn tiền: đơn hàng đã được thanh toán hai lần",
    "late_payment": "Hoàn tiền: thanh toán sau khi đơn hàng đã hủy hoặc hết hạn",
    "cancelled_after_payment": "Hoàn tiền: đơn hàng đã hủy sau khi thanh toán",
    "issuance_failed": "Hoàn tiền: không thể cấp chứng thư số cho đơn hàng",
    "operator": "Hoàn tiền theo quyết định của bộ phận hỗ trợ",
}


def order_view(doc: Doc) -> OrderView:
    status = domain.OrderStatus(doc["status"])
    cert = doc.get("certificate") or None
    return OrderView(
        order_id=doc["_id"],
        account_id=doc["account_id"],
        package_code=doc["package_code"],
        validity_years=doc["validity_years"],
        amount_vnd=doc["amount_vnd"],
        status=status.value,
        status_vi=domain.STATUS_VI[status],
        certificate=CertificateSummary(**cert) if cert else None,
        key_algorithm=doc.get("key_algorithm", "ecdsa-p256"),
        renews_certificate_id=doc.get("renews_certificate_id"),
        certificate_kind=doc.get("certificate_kind", "personal"),
        organisation=(
            OrganisationSummary(name=doc["organisation"]["name"], tax_code=doc["organisation"]["tax_code"])
            if doc.get("organisation")
            else None
        ),
        organisation_registration_id=doc.get("organisation_registration_id"),
        refunds=[
            RefundEntry(
                amount_vnd=r["amount_vnd"],
                reason=r["reason"],
                reason_vi=REFUND_VI.get(r["reason"], r["reason"]),
                at=local(r["at"]),
            )
            for r in doc.get("refunds", [])
        ],
        # In the order things happened, whatever order the events arrived in (they come from different topics).
        timeline=[
            TimelineEntry(event=t["event"], at=local(t["at"]))
            for t in sorted(doc.get("timeline", []), key=lambda t: as_utc(t["at"]))
        ],
    )


def package_for(code: str) -> domain.Package:
    package = domain.PACKAGES.get(code)
    if package is None:
        raise Invalid(
            "unknown_package",
            f"No such certificate package: {code}",
            "Gói chứng thư số không tồn tại",
            details={"code": code},
        )
    return package


def package_view(p: domain.Package) -> PackageView:
    return PackageView(
        code=p.code,
        name=p.name_en,
        name_vi=p.name_vi,
        validity_years=p.validity_years,
        price_vnd=p.price_vnd,
        kind=p.kind,
    )


def packages() -> PackageList:
    return PackageList(packages=[package_view(p) for p in domain.PACKAGES.values()])
