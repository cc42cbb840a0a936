"""Organisations end to end: a sales agent opens the registration, the authorised person is invited by SMS,
proves their identity through VNeID, confirms, pays for the organisation and activates an organisation
certificate naming the organisation and its tax code. Agents see only their own registrations; a person
cannot act on an organisation they are not authorised for; bad input changes nothing."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID
from vneid_status_subscriber import StatusBook, follow

from kyso_client import vneid
from kyso_client.api import Endpoints, KysoApi, eventually
from kyso_client.journey import EventWatcher, open_account, pay_and_activate
from pkilint_check import certificate_findings
from stack import Stack

from .helpers import PASSWORD, expect, new_citizen, operator_console

PIN = "482915"


def organisation(**changes: Any) -> dict[str, Any]:
    return {
        "name": "Công ty Cổ phần Ánh Dương",
        "tax_code": "0100109106",
        "address": "12 Lý Thường Kiệt, Hoàn Kiếm, Hà Nội",
        "province": "Hà Nội",
        "legal_representative": "Phạm Văn Dương",
    } | changes


async def test_an_agent_opens_and_the_authorised_person_ends_with_an_active_organisation_certificate(
    stack: Stack, endpoints: Endpoints, api: KysoApi, watcher: EventWatcher
) -> None:
    # VNeID's own subscriber follows kyso's events from the start, knowing only the contracts
    book, stop = StatusBook(), asyncio.Event()
    follower = asyncio.create_task(follow(book, stack.kafka_bootstrap, f"vneid-{uuid.uuid4().hex}", stop))
    agent = await operator_console(stack, endpoints, ("sales_agent",))
    other_agent = await operator_console(stack, endpoints, ("sales_agent",))
    stranger = await new_citizen(KysoApi(endpoints))
    person = KysoApi(endpoints)
    try:
        citizen_id, phone = vneid.random_citizen_id(), vneid.random_phone()
        invited = {"full_name": "Đỗ Thị Lan", "citizen_id": citizen_id, "phone": phone}

        # Bad input and the wrong people change nothing.
        await expect(
            "invalid_tax_code",
            422,
            agent.open_organisation_registration(organisation(tax_code="0100109107"), invited, ["ORGANISATION_1Y"]),
        )
        await expect(
            "personal_package", 422, agent.open_organisation_registration(organisation(), invited, ["PERSONAL_1Y"])
        )
        await expect(
            "role_required",
            403,
            stranger.api.open_organisation_registration(organisation(), invited, ["ORGANISATION_1Y"]),
        )
        assert (await agent.organisation_registrations())["registrations"] == []

        opened = await agent.open_organisation_registration(organisation(), invited, ["ORGANISATION_1Y", "STAFF_1Y"])
        reg_id = opened["organisation_registration_id"]
        assert opened["status"] == "invited" and opened["total_vnd"] == 3_500_000

        # The invitation reaches the authorised person's phone through the otp service.
        text = await eventually(lambda: api.dev_sms_text(phone, reg_id), lambda t: t is not None, timeout=30)
        assert text is not None and "0100109106" in text and reg_id in text

        # Another agent neither sees nor manages it; a stranger can neither see nor confirm it.
        await expect("forbidden", 403, other_agent.organisation_registration(reg_id))
        await expect("forbidden", 403, other_agent.withdraw_organisation_registration(reg_id))
        assert reg_id not in {
            r["organisation_registration_id"] for r in (await other_agent.organisation_registrations())["registrations"]
        }
        await expect("forbidden", 403, stranger.api.organisation_registration(reg_id))
        await expect("not_authorised_person", 403, stranger.api.confirm_organisation_registration(reg_id))

        # The authorised person proves who they are through VNeID, makes an account and confirms.
        acct = await open_account(person, "Đỗ Thị Lan", PASSWORD, "1988-08-08", citizen_id=citizen_id, phone=phone)
        mine = (await person.organisation_registrations())["registrations"]
        assert [r["organisation_registration_id"] for r in mine] == [reg_id]
        confirmed = await person.confirm_organisation_registration(reg_id)
        assert confirmed["status"] == "confirmed" and confirmed["account_id"] == acct.account_id
        org_order, staff_order = (o["order_id"] for o in confirmed["orders"])
        await expect("registration_not_withdrawable", 409, agent.withdraw_organisation_registration(reg_id))
        seen = await agent.organisation_registration(reg_id)
        assert [o["status"] for o in seen["orders"]] == ["awaiting_payment", "awaiting_payment"]

        # The journey continues as for a person: payment, contract, issuance, activation.
        await eventually(lambda: person.otp_methods(acct.account_id), lambda m: m["methods"]["sms"]["available"])
        bought = await pay_and_activate(person, acct.account_id, phone, org_order, PIN, say=lambda _: None)
        order = await person.order_reaching(org_order, "active")
        assert order["certificate_kind"] == "organisation"
        assert order["organisation"] == {"name": "Công ty Cổ phần Ánh Dương", "tax_code": "0100109106"}
        cert_doc = await person.certificate(bought.certificate_id)
        cert = x509.load_pem_x509_certificate(cert_doc["certificate_pem"].encode())
        assert certificate_findings(cert.public_bytes(Encoding.DER)) == ""
        subject = cert.subject
        assert subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "Công ty Cổ phần Ánh Dương"
        assert subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "Công ty Cổ phần Ánh Dương"
        uids = sorted(a.value for a in subject.get_attributes_for_oid(NameOID.USER_ID))
        assert uids == [f"CCCD:{citizen_id}", "MST:0100109106"]
        assert (await person.order(staff_order))["status"] == "awaiting_payment"

        # The stranger cannot act on the organisation's orders either.
        await expect("forbidden", 403, stranger.api.order(org_order))
        await expect("forbidden", 403, stranger.api.cancel_order(staff_order))

        # VNeID's status query and VNeID's own subscriber show the same thing
        shown = await api.vneid_status(vneid.sign(vneid.status_query(citizen_id)))
        assert {(c["order_id"], c["status"]) for c in shown["certificates"]} == {
            (org_order, "active"),
            (staff_order, "awaiting_payment"),
        }
        served = next(c for c in shown["certificates"] if c["order_id"] == org_order)
        assert (
            served["serial_number"] == format(cert.serial_number, "x") and served["certificate_kind"] == "organisation"
        )
        expected = {(c["order_id"], c["status"], c["serial_number"]) for c in shown["certificates"]}
        await eventually(lambda: _rows(book, citizen_id), lambda rows: rows == expected, timeout=30)
        await expect(
            "invalid_vneid_signature",
            401,
            api.vneid_status(
                vneid.tampered(vneid.sign(vneid.status_query(citizen_id)), citizen_id=vneid.random_citizen_id())
            ),
        )
        await expect(
            "invalid_status_query", 422, api.vneid_status(vneid.sign(vneid.identity(citizen_id, "X", "1990-01-01")))
        )

        kinds = {doc["type"] for _, key, doc in watcher.keyed_all() if key == reg_id.encode()}
        assert {
            "vn.kyso.registration.organisation_registration_opened.v1",
            "vn.kyso.registration.organisation_registration_confirmed.v1",
        } <= kinds
    finally:
        stop.set()
        await follower
        for client in (agent, other_agent, stranger.api, person):
            await client.aclose()


async def _rows(book: StatusBook, citizen_id: str) -> set[tuple[str, str, str | None]]:
    return {(r.order_id, r.status, r.serial_number) for r in book.of_citizen(citizen_id)}
