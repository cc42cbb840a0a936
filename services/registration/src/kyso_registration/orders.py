"""Step 4: the citizen chooses a certificate package and places an order; payment is due next."""

from __future__ import annotations

import uuid
from datetime import date, timedelta

from kyso_contracts import (
    KeyAlgorithm,
    OrderCancelled,
    OrderExpired,
    OrderPlaced,
    OrganisationFacts,
    SubscriberIdentity,
)
from kyso_kit.changes import Changes
from kyso_kit.clock import Clock
from kyso_kit.errors import Conflict, not_found
from kyso_kit.policy import Principal, ensure_may
from kyso_kit.store import Doc, DuplicateKey, Store, insert_once
from kyso_kit.timeutil import as_utc

from . import domain
from .domain import OrderStatus as St
from .identity import Identities
from .schemas import (
    OrderView,
)
from .views import order_view, package_for

RENEWABLE = {
    domain.OrderStatus.PENDING_ACTIVATION.value,
    domain.OrderStatus.ACTIVE.value,
    domain.OrderStatus.SUSPENDED.value,
}


class Orders:
    def __init__(
        self,
        store: Store,
        identities: Identities,
        clock: Clock,
        changes: Changes,
        payment_window: timedelta = timedelta(hours=24),
    ) -> None:
        self.payment_window = payment_window
        self.orders = store.collection("orders", events=True)
        self.open_orders = store.collection("open_orders")
        self.changes = changes
        self.accounts = store.collection("accounts", events=True)
        self.identities = identities
        self.clock = clock

    async def init(self) -> None:
        await self.orders.ensure_index([("account_id", 1)])
        await self.orders.ensure_index([("status", 1)])

    async def place(
        self,
        who: Principal,
        package_code: str,
        key_algorithm: KeyAlgorithm = "ecdsa-p256",
        renews_certificate_id: str | None = None,
    ) -> OrderView:
        package = package_for(package_code)
        if package.kind != "personal":
            raise Conflict(
                "package_needs_sales_agent",
                "Organisation and staff certificates are registered through a sales agent",
                "Chứng thư số tổ chức và cá nhân thuộc tổ chức được đăng ký qua đại lý bán hàng",
            )
        if renews_certificate_id is not None:
            await self._check_renewable(who, renews_certificate_id)
        acct = await self.subscriber_account(who.account_id)
        order_id = uuid.uuid4().hex
        await self._claim_open_slot(who.account_id, package.code, order_id)
        doc, placed = await self._draw_up(acct, package, order_id, key_algorithm, renews_certificate_id)
        await self.orders.insert(doc, events=[placed])
        return order_view(doc)

    async def subscriber_account(self, account_id: str) -> Doc:
        """An account that came through VNeID (its identity is what certificates name)."""
        acct = await self.accounts.get(account_id)
        if acct is None or not acct.get("registration_id"):
            raise not_found("account", "tài khoản")
        return acct

    async def place_for_organisation(
        self, account_id: str, package_code: str, order_id: str, registration: Doc
    ) -> None:
        """An order of a confirmed organisation registration, held by its authorised person; placed once
        (``order_id`` was fixed when the registration was confirmed, so a repeat does nothing)."""
        if await self.orders.get(order_id, {"_id": 1}) is not None:
            return
        acct = await self.subscriber_account(account_id)
        org = registration["organisation"]
        doc, placed = await self._draw_up(
            acct,
            package_for(package_code),
            order_id,
            "ecdsa-p256",
            None,
            organisation=OrganisationFacts.model_validate(org),
            organisation_registration_id=registration["_id"],
        )
        try:
            await self.orders.insert(doc, events=[placed])
        except DuplicateKey:
            return  # placed by a concurrent confirmation or its event

    async def _draw_up(
        self,
        acct: Doc,
        package: domain.Package,
        order_id: str,
        key_algorithm: KeyAlgorithm,
        renews_certificate_id: str | None,
        *,
        organisation: OrganisationFacts | None = None,
        organisation_registration_id: str | None = None,
    ) -> tuple[Doc, OrderPlaced]:
        reg = await self.identities.get(acct["registration_id"])
        ident = reg["identity"]
        t = self.clock.now()
        placed = OrderPlaced(
            order_id=order_id,
            account_id=acct["_id"],
            registration_id=reg["_id"],
            subscriber=SubscriberIdentity(
                citizen_id=ident["citizen_id"],
                full_name=ident["full_name"],
                date_of_birth=date.fromisoformat(ident["date_of_birth"]),
                province=ident.get("province"),
                locality=ident.get("locality"),
            ),
            email=acct["email"],
            package_code=package.code,
            validity_years=package.validity_years,
            amount_vnd=package.price_vnd,
            placed_at=t,
            key_algorithm=key_algorithm,
            renews_certificate_id=renews_certificate_id,
            certificate_kind=package.kind,
            organisation=organisation,
            organisation_registration_id=organisation_registration_id,
        )
        doc = {
            "_id": order_id,
            "account_id": acct["_id"],
            "registration_id": reg["_id"],
            "package_code": package.code,
            "validity_years": package.validity_years,
            "amount_vnd": package.price_vnd,
            "placed_at": t,
            "status": domain.OrderStatus.AWAITING_PAYMENT.value,
            "timeline": [{"event": "order_placed", "at": t}],
            "certificate": {},
            "key_algorithm": key_algorithm,
            "renews_certificate_id": renews_certificate_id,
            "certificate_kind": package.kind,
            "organisation": organisation.model_dump() if organisation else None,
            "organisation_registration_id": organisation_registration_id,
        }
        return doc, placed

    async def _claim_open_slot(self, account_id: str, package_code: str, order_id: str) -> None:
        """One order waiting for payment per subscriber and package, race-free: a marker keyed by both
        (a unique-id insert), taken over only from an order that no longer waits (paid, closed — or never
        written, after a crash between the marker and the order).

        No retry: an order that stopped waiting never waits again (``domain.OPEN`` is left for good,
        ``tests/unit/test_state_machines.py``), so the holder read here stays a valid reason to take over,
        and the takeover write is guarded by the marker still naming that holder. A placement that loses
        the takeover to a concurrent one is refused like any other second order: the winner's order waits."""
        key = f"{account_id}:{package_code}"
        if await insert_once(self.open_orders, {"_id": key, "order_id": order_id}):
            return
        marker = await self.open_orders.get(key)
        assert marker is not None  # markers are never deleted
        holder = await self.orders.get(marker["order_id"], {"status": 1})
        if holder is None or St(holder["status"]) not in domain.OPEN:
            if await self.open_orders.update(
                {"_id": key, "order_id": marker["order_id"]}, {"$set": {"order_id": order_id}}
            ):
                return
            marker = await self.open_orders.get(key) or marker  # lost to a concurrent placement: it waits now
        waiting = marker["order_id"]
        raise Conflict(
            "open_order_exists",
            f"Order {waiting} for this package waits for payment: pay or cancel it first",
            "Đã có đơn hàng cho gói này đang chờ thanh toán; vui lòng thanh toán hoặc hủy đơn đó",
            details={"order_id": waiting},
        )

    async def cancel(self, who: Principal, order_id: str) -> OrderView:
        """The subscriber cancels an order that waits for payment (it closes at once; money paid in a race
        with this is refunded), or a paid one whose contract is not consented yet: then signing decides —
        it stops issuance (``IssuanceStopped``; the order is cancelled and payment refunds) unless the
        consent got there first (the order goes on)."""
        doc = await self.orders.get(order_id)
        if doc is None:
            raise not_found("order", "đơn hàng")
        ensure_may(who, doc["account_id"], "sign")
        t = self.clock.now()
        for before, after, paid in (
            (domain.OPEN, St.CANCELLED, False),
            (domain.PAID_NOT_CONSENTED, St.CANCELLATION_REQUESTED, True),
        ):
            cancelled = OrderCancelled(
                order_id=order_id,
                account_id=doc["account_id"],
                amount_vnd=doc["amount_vnd"],
                cancelled_at=t,
                after_payment=paid,
            )
            moved = await self.orders.update_and_get(
                {"_id": order_id, "status": {"$in": [s.value for s in before]}},
                {"$set": {"status": after.value}, "$push": {"timeline": {"event": after.value, "at": t}}},
                events=[cancelled],
            )
            if moved is not None:
                self.changes.notify(order_id)
                return order_view(moved)
        raise Conflict(
            "order_not_cancellable",
            "Only an order whose contract is not signed yet can be cancelled",
            "Chỉ hủy được đơn hàng chưa ký hợp đồng dịch vụ",
        )

    async def expire_unpaid(self) -> int:
        """Close the orders not paid within the payment window, each with ``OrderExpired``."""
        now, n = self.clock.now(), 0
        for status in domain.OPEN:
            for doc in await self.orders.find({"status": status.value}):
                if as_utc(doc["placed_at"]) + self.payment_window > now:
                    continue
                expired = OrderExpired(
                    order_id=doc["_id"],
                    account_id=doc["account_id"],
                    amount_vnd=doc["amount_vnd"],
                    placed_at=as_utc(doc["placed_at"]),
                    expired_at=now,
                )
                n += await self.orders.update(
                    {"_id": doc["_id"], "status": status.value},
                    {
                        "$set": {"status": St.ORDER_EXPIRED.value},
                        "$push": {"timeline": {"event": "order_expired", "at": now}},
                    },
                    events=[expired],
                )
                self.changes.notify(doc["_id"])
        return n

    async def _check_renewable(self, who: Principal, certificate_id: str) -> None:
        """Only a certificate of one's own, issued and neither revoked nor expired, can be renewed."""
        mine = await self.orders.find({"account_id": who.account_id})
        renewed = [o for o in mine if (o.get("certificate") or {}).get("certificate_id") == certificate_id]
        if not renewed:
            raise not_found("certificate", "chứng thư số")
        if renewed[0]["status"] not in RENEWABLE:
            raise Conflict(
                "not_renewable",
                "Only a certificate in force can be renewed",
                "Chỉ gia hạn được chứng thư số còn hiệu lực",
            )

    async def view(self, who: Principal, order_id: str) -> OrderView:
        doc = await self.orders.get(order_id)
        if doc is None:
            raise not_found("order", "đơn hàng")
        ensure_may(who, doc["account_id"], "read")
        return order_view(doc)

    async def view_after(self, who: Principal, order_id: str, known_status: str, wait_seconds: float) -> OrderView:
        """The order as soon as its status is no longer ``known_status`` (or after ``wait_seconds``)."""
        return await self.changes.read_when(
            order_id, lambda: self.view(who, order_id), lambda v: v.status != known_status, wait_seconds
        )
