"""Organisations through a sales agent: who may open, see, confirm and withdraw; the tax code; the orders
placed once on confirmation (also when the confirming process died and the event does it)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from kyso_client import vneid
from kyso_contracts import CloudEvent, OrderPlaced, OrganisationRegistrationConfirmed
from kyso_contracts.types import tax_code_problem
from kyso_kit.auth import Principal
from kyso_kit.clock import FakeClock
from kyso_kit.errors import Conflict, Forbidden, Invalid
from kyso_kit.store import MemoryStore
from kyso_registration.schemas import OrganisationRegistrationRequest

from .conftest import delivered
from .test_registration_rules import Registration

AGENT = Principal("agent-1", frozenset({"sales_agent"}))
OTHER_AGENT = Principal("agent-2", frozenset({"sales_agent"}))
OPERATOR = Principal("op-1", frozenset({"operator"}))


def request(citizen_id: str, packages: list[str] | None = None, **org: Any) -> OrganisationRegistrationRequest:
    return OrganisationRegistrationRequest.model_validate(
        {
            "organisation": {
                "name": "Công ty TNHH Đèn Sáng",
                "tax_code": "0100109106",
                "address": "1 Tràng Tiền, Hoàn Kiếm, Hà Nội",
                "province": "Hà Nội",
                "legal_representative": "Trần Văn Sáng",
            }
            | org,
            "authorised_person": {"full_name": "Lê Thị Hoa", "citizen_id": citizen_id, "phone": "+84912345678"},
            "package_codes": packages or ["ORGANISATION_1Y", "STAFF_1Y"],
        }
    )


@pytest.fixture
async def registration(store: MemoryStore, clock: FakeClock) -> Registration:
    r = Registration(store, clock)
    await r.start()
    return r


def test_tax_codes_are_checked_by_their_check_digit() -> None:
    assert tax_code_problem("0100109106") is None  # a real enterprise code
    assert tax_code_problem("0100109106-001") is None  # one of its branches
    for bad in ("0100109107", "010010910", "01001091066", "0100109106-000", "0100109106-1", "010010910a", "٠١٠٠١٠٩١٠٦"):
        assert tax_code_problem(bad) is not None, bad
    with pytest.raises(ValidationError) as err:
        request("001099012345", tax_code="0100109107")
    assert err.value.errors()[0]["type"] == "invalid_tax_code"


async def test_an_agent_opens_the_person_confirms_and_orders_are_placed_once(
    registration: Registration, store: MemoryStore, clock: FakeClock
) -> None:
    orgs = registration.organisations
    citizen_id = vneid.random_citizen_id()
    opened = await orgs.open(AGENT, request(citizen_id))
    assert opened.status == "invited" and opened.total_vnd == 2_500_000 + 1_000_000
    assert opened.authorised_person.phone == "+849*****678"
    assert [e.type for e in store.published][-1] == "vn.kyso.registration.organisation_registration_opened.v1"

    person = await registration.citizen(citizen_id)
    stranger = await registration.citizen(vneid.random_citizen_id(), phone="+84912000111")
    with pytest.raises(Forbidden):
        await orgs.view(stranger, opened.organisation_registration_id)
    with pytest.raises(Forbidden):
        await orgs.confirm(stranger, opened.organisation_registration_id)
    with pytest.raises(Forbidden):
        await orgs.view(OTHER_AGENT, opened.organisation_registration_id)
    with pytest.raises(Forbidden):
        await orgs.withdraw(OTHER_AGENT, opened.organisation_registration_id)
    assert (await orgs.list(OTHER_AGENT)).registrations == []
    assert [r.organisation_registration_id for r in (await orgs.list(person)).registrations] == [
        opened.organisation_registration_id
    ]
    with pytest.raises(Forbidden):
        await orgs.confirm(OPERATOR, opened.organisation_registration_id)  # not the person: no account of theirs

    before = len(store.published)
    confirmed = await orgs.confirm(person, opened.organisation_registration_id)
    assert confirmed.status == "confirmed" and confirmed.account_id == person.account_id
    assert [o.status for o in confirmed.orders] == ["awaiting_payment", "awaiting_payment"]
    types = [e.type for e in store.published[before:]]
    assert types.count("vn.kyso.registration.order_placed.v1") == 2
    assert types.count("vn.kyso.registration.organisation_registration_confirmed.v1") == 1
    placed = [e.data for e in store.published[before:] if isinstance(e.data, OrderPlaced)]
    assert {p.certificate_kind for p in placed} == {"organisation", "staff"}
    assert all(p.organisation and p.organisation.tax_code == "0100109106" for p in placed)
    assert {p.account_id for p in placed} == {person.account_id}

    # A repeat (the app retried), and the event's handler: nothing is placed twice.
    again = await orgs.confirm(person, opened.organisation_registration_id)
    assert again.orders == confirmed.orders
    event = next(e for e in store.published if isinstance(e.data, OrganisationRegistrationConfirmed))
    assert await registration.deliver(event)
    assert [e.type for e in store.published[before:]].count("vn.kyso.registration.order_placed.v1") == 2
    with pytest.raises(Conflict):
        await orgs.withdraw(AGENT, opened.organisation_registration_id)  # confirmed: its orders are cancelled instead
    order = await registration.orders.view(person, confirmed.orders[0].order_id)
    assert order.organisation is not None and order.organisation.tax_code == "0100109106"


async def test_orders_are_placed_by_the_event_when_the_confirming_process_died(
    registration: Registration, store: MemoryStore, clock: FakeClock
) -> None:
    orgs = registration.organisations
    citizen_id = vneid.random_citizen_id()
    opened = await orgs.open(AGENT, request(citizen_id, ["STAFF_2Y"]))
    person = await registration.citizen(citizen_id)

    async def die(*_: Any) -> None:
        raise SystemExit("killed after the confirmation was written")

    original = registration.orders.place_for_organisation
    registration.orders.place_for_organisation = die  # type: ignore[method-assign]
    with pytest.raises(SystemExit):
        await orgs.confirm(person, opened.organisation_registration_id)
    registration.orders.place_for_organisation = original  # type: ignore[method-assign]
    assert not [e for e in store.published if isinstance(e.data, OrderPlaced)]
    event: CloudEvent[Any] = next(e for e in store.published if isinstance(e.data, OrganisationRegistrationConfirmed))
    assert await registration.deliver(delivered(event.data, clock))
    placed = [e.data for e in store.published if isinstance(e.data, OrderPlaced)]
    assert [(p.package_code, p.order_id) for p in placed] == [("STAFF_2Y", event.data.order_ids[0])]


async def test_who_may_open_and_what_an_organisation_may_buy(registration: Registration) -> None:
    orgs = registration.organisations
    person = await registration.citizen()
    with pytest.raises(Forbidden) as denied:
        await orgs.open(person, request(vneid.random_citizen_id()))  # a subscriber is not a sales agent
    assert denied.value.code == "role_required"
    with pytest.raises(Invalid) as personal:
        await orgs.open(AGENT, request(vneid.random_citizen_id(), ["PERSONAL_1Y"]))
    assert personal.value.code == "personal_package"
    with pytest.raises(Invalid):
        await orgs.open(AGENT, request(vneid.random_citizen_id(), ["STAFF_1Y", "STAFF_1Y"]))
    with pytest.raises(Invalid):
        await orgs.open(AGENT, request(vneid.random_citizen_id(), ["NO_SUCH"]))
    with pytest.raises(Conflict) as self_service:
        await registration.orders.place(person, "ORGANISATION_1Y")  # not in the app: through an agent
    assert self_service.value.code == "package_needs_sales_agent"
    assert (await orgs.list(AGENT)).registrations == []


async def test_the_agent_or_an_operator_withdraws_before_confirmation(registration: Registration) -> None:
    orgs = registration.organisations
    citizen_id = vneid.random_citizen_id()
    first = await orgs.open(AGENT, request(citizen_id))
    second = await orgs.open(AGENT, request(citizen_id))
    assert (await orgs.withdraw(AGENT, first.organisation_registration_id)).status == "withdrawn"
    assert (await orgs.withdraw(OPERATOR, second.organisation_registration_id)).status == "withdrawn"
    person = await registration.citizen(citizen_id)
    with pytest.raises(Conflict):
        await orgs.confirm(person, first.organisation_registration_id)
    assert len((await orgs.list(OPERATOR)).registrations) == 2
