"""Organisations through a sales agent (the SmartCA guide's rule: organisations and individuals in an
organisation do not self-register).

A sales agent opens the registration: the organisation (tax code with its check digit), its legal
representative, the authorised person (citizen ID, phone) and the packages. The otp service sends the
invitation SMS. The authorised person proves who they are through VNeID (their account's identity must
carry the invited citizen ID), reviews the data and confirms; the registration's orders are then placed
in their name and the journey continues as for a person (payment by the organisation, contract, issuance,
activation). A sales agent sees and manages only the registrations they opened; the authorised person
only their own; operators (and auditors, reading) all of them.
"""

from __future__ import annotations

import uuid
from typing import Any

from kyso_contracts import (
    CloudEvent,
    OrganisationFacts,
    OrganisationRegistrationConfirmed,
    OrganisationRegistrationOpened,
    OrganisationRegistrationWithdrawn,
)
from kyso_kit.changes import Changes
from kyso_kit.clock import Clock
from kyso_kit.errors import Conflict, Forbidden, Invalid, forbidden, not_found
from kyso_kit.logs import mask_phone
from kyso_kit.policy import Principal, ensure_role
from kyso_kit.store import Doc, Store
from kyso_kit.timeutil import local

from . import domain
from .domain import OrganisationRegistrationStatus as OS
from .orders import Orders
from .schemas import (
    AuthorisedPersonView,
    OrganisationOrderView,
    OrganisationRegistrationList,
    OrganisationRegistrationRequest,
    OrganisationRegistrationView,
)
from .views import package_for, package_view


def not_authorised_person() -> Forbidden:
    return Forbidden(
        "not_authorised_person",
        "Only the person the organisation authorised (proven through VNeID) can confirm this registration",
        "Chỉ người được tổ chức ủy quyền (đã xác thực qua VNeID) mới xác nhận được đăng ký này",
    )


class Organisations:
    def __init__(self, store: Store, orders: Orders, clock: Clock, changes: Changes) -> None:
        self.registrations = store.collection("organisation_registrations", events=True)
        self.accounts = store.collection("accounts", events=True)
        self.orders = orders
        self.clock = clock
        self.changes = changes

    async def init(self) -> None:
        await self.registrations.ensure_index([("sales_agent_id", 1)])
        await self.registrations.ensure_index([("authorised_person.citizen_id", 1)])

    # ------------------------------------------------------------------ the sales agent

    async def open(self, who: Principal, body: OrganisationRegistrationRequest) -> OrganisationRegistrationView:
        ensure_role(who, "sales_agent")
        if len(set(body.package_codes)) != len(body.package_codes):
            raise Invalid("duplicate_package", "A package is listed twice", "Một gói được chọn hai lần")
        for code in body.package_codes:
            if package_for(code).kind == "personal":
                raise Invalid(
                    "personal_package",
                    f"{code} is a personal package: a person registers it in the app",
                    "Gói cá nhân do người dùng tự đăng ký trên ứng dụng",
                    details={"code": code},
                )
        org = OrganisationFacts.model_validate(body.organisation.model_dump())
        reg_id, t = uuid.uuid4().hex, self.clock.now()
        person = body.authorised_person
        doc = {
            "_id": reg_id,
            "status": OS.INVITED.value,
            "organisation": org.model_dump(),
            "authorised_person": person.model_dump(),
            "package_codes": list(body.package_codes),
            "sales_agent_id": who.account_id,
            "opened_at": t,
        }
        opened = OrganisationRegistrationOpened(
            organisation_registration_id=reg_id,
            organisation=org,
            authorised_person_name=person.full_name,
            authorised_person_citizen_id=person.citizen_id,
            authorised_person_phone=person.phone,
            package_codes=list(body.package_codes),
            sales_agent_id=who.account_id,
            opened_at=t,
        )
        await self.registrations.insert(doc, events=[opened])
        return await self._view(doc)

    async def withdraw(self, who: Principal, reg_id: str) -> OrganisationRegistrationView:
        doc = await self._get(reg_id)
        if not (who.has("operator") or (who.has("sales_agent") and doc["sales_agent_id"] == who.account_id)):
            raise forbidden()
        t = self.clock.now()
        withdrawn = OrganisationRegistrationWithdrawn(
            organisation_registration_id=reg_id,
            sales_agent_id=doc["sales_agent_id"],
            withdrawn_by=who.account_id,
            withdrawn_at=t,
        )
        after = await self.registrations.update_and_get(
            {"_id": reg_id, "status": OS.INVITED.value},
            {"$set": {"status": OS.WITHDRAWN.value, "withdrawn_at": t, "withdrawn_by": who.account_id}},
            events=[withdrawn],
        )
        if after is None:
            raise Conflict(
                "registration_not_withdrawable",
                "Only a registration not yet confirmed can be withdrawn (a confirmed one is handled by its orders)",
                "Chỉ rút được đăng ký chưa được xác nhận",
            )
        self.changes.notify(reg_id)
        return await self._view(after)

    # ------------------------------------------------------------------ the authorised person

    async def confirm(self, who: Principal, reg_id: str) -> OrganisationRegistrationView:
        """The authorised person confirms: their account's VNeID identity must carry the invited citizen ID.
        The orders' ids are fixed in the same write as ``OrganisationRegistrationConfirmed``; the orders
        are placed now and, should this process die first, by the handler of that event."""
        doc = await self._get(reg_id)
        citizen_id = await self._citizen_id(who.account_id)
        if citizen_id is None or citizen_id != doc["authorised_person"]["citizen_id"]:
            raise not_authorised_person()
        status = OS(doc["status"])
        if status == OS.CONFIRMED and doc.get("account_id") == who.account_id:
            await self._place_orders(doc)  # a repeat: the orders exist (or are placed now)
            return await self._view(doc)
        if status != OS.INVITED:
            raise Conflict(
                "registration_not_confirmable",
                f"This registration is {status.value}",
                f"Đăng ký này {domain.ORG_STATUS_VI[status].lower()}",
            )
        t = self.clock.now()
        order_ids = [uuid.uuid4().hex for _ in doc["package_codes"]]
        confirmed = OrganisationRegistrationConfirmed(
            organisation_registration_id=reg_id,
            organisation=OrganisationFacts.model_validate(doc["organisation"]),
            account_id=who.account_id,
            citizen_id=citizen_id,
            order_ids=order_ids,
            sales_agent_id=doc["sales_agent_id"],
            confirmed_at=t,
        )
        after = await self.registrations.update_and_get(
            {"_id": reg_id, "status": OS.INVITED.value},
            {
                "$set": {
                    "status": OS.CONFIRMED.value,
                    "account_id": who.account_id,
                    "order_ids": order_ids,
                    "confirmed_at": t,
                }
            },
            events=[confirmed],
        )
        if after is None:  # withdrawn or confirmed meanwhile
            return await self.confirm(who, reg_id)
        await self._place_orders(after)
        self.changes.notify(reg_id)
        return await self._view(after)

    async def when_confirmed_place_orders(self, event: CloudEvent[OrganisationRegistrationConfirmed]) -> None:
        """The orders of a confirmed registration exist even if the confirming process died after the
        confirmation was written (each order is placed once: its id was fixed then)."""
        doc = await self.registrations.get(event.data.organisation_registration_id)
        if doc is None:
            raise LookupError(f"organisation registration {event.data.organisation_registration_id} not found")
        await self._place_orders(doc)

    async def _place_orders(self, doc: Doc) -> None:
        for order_id, code in zip(doc["order_ids"], doc["package_codes"], strict=True):
            await self.orders.place_for_organisation(doc["account_id"], code, order_id, doc)

    # ------------------------------------------------------------------ reading

    async def view(self, who: Principal, reg_id: str) -> OrganisationRegistrationView:
        doc = await self._get(reg_id)
        if not await self._may_read(who, doc):
            raise forbidden()
        return await self._view(doc)

    async def list(self, who: Principal, limit: int = 50) -> OrganisationRegistrationList:
        """The registrations the caller may see: an agent's own, a person's own, or (operator) all."""
        query: dict[str, Any]
        if who.has("operator") or who.has("auditor"):
            query = {}
        elif who.has("sales_agent"):
            query = {"sales_agent_id": who.account_id}
        else:
            citizen_id = await self._citizen_id(who.account_id)
            if citizen_id is None:
                return OrganisationRegistrationList(registrations=[])
            query = {"authorised_person.citizen_id": citizen_id}
        docs = await self.registrations.find(query, limit=limit, sort=("opened_at", -1))
        return OrganisationRegistrationList(registrations=[await self._view(d) for d in docs])

    async def _may_read(self, who: Principal, doc: Doc) -> bool:
        if who.has("operator") or who.has("auditor"):
            return True
        if who.has("sales_agent") and doc["sales_agent_id"] == who.account_id:
            return True
        citizen_id = await self._citizen_id(who.account_id)
        return citizen_id is not None and citizen_id == str(doc["authorised_person"]["citizen_id"])

    async def _citizen_id(self, account_id: str) -> str | None:
        """The citizen ID the account's VNeID identity carries; None for an account an admin made."""
        acct = await self.accounts.get(account_id, {"citizen_id": 1, "registration_id": 1})
        return str(acct["citizen_id"]) if acct and acct.get("registration_id") and acct.get("citizen_id") else None

    async def _get(self, reg_id: str) -> Doc:
        doc = await self.registrations.get(reg_id)
        if doc is None:
            raise not_found("organisation_registration", "đăng ký tổ chức")
        return doc

    async def _view(self, doc: Doc) -> OrganisationRegistrationView:
        status = OS(doc["status"])
        packages = [package_for(code) for code in doc["package_codes"]]
        orders = []
        for order_id, code in zip(doc.get("order_ids") or [], doc["package_codes"], strict=False):
            order = await self.orders.orders.get(order_id, {"status": 1})
            orders.append(
                OrganisationOrderView(order_id=order_id, package_code=code, status=order["status"] if order else None)
            )
        person = doc["authorised_person"]
        return OrganisationRegistrationView(
            organisation_registration_id=doc["_id"],
            status=status.value,
            status_vi=domain.ORG_STATUS_VI[status],
            organisation=OrganisationFacts.model_validate(doc["organisation"]),
            authorised_person=AuthorisedPersonView(
                full_name=person["full_name"], citizen_id=person["citizen_id"], phone=mask_phone(person["phone"])
            ),
            packages=[package_view(p) for p in packages],
            total_vnd=sum(p.price_vnd for p in packages),
            sales_agent_id=doc["sales_agent_id"],
            opened_at=local(doc["opened_at"]),
            confirmed_at=local(doc["confirmed_at"]) if doc.get("confirmed_at") else None,
            account_id=doc.get("account_id"),
            orders=orders,
        )
