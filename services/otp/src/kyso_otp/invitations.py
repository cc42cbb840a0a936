"""Invitation SMS: when a sales agent opens an organisation registration, the authorised person is told by
SMS to continue in the app. Sent at least once per registration (a redelivered event after a send that
completed does nothing; one that raced a crash may send again, which an invitation tolerates)."""

from __future__ import annotations

import logging
import unicodedata

from kyso_contracts import CloudEvent, OrganisationRegistrationOpened
from kyso_kit.clock import Clock
from kyso_kit.store import DuplicateKey, Store

from .delivery import SmsSender

log = logging.getLogger(__name__)

INVITATION_TEXT = (
    "kyso: {org} (MST {tax_code}) moi ban dang ky chung thu so ky tu xa. Mo ung dung, xac thuc VNeID va nhap "
    "ma dang ky {code} de xac nhan. Neu khong phai ban, hay bo qua tin nhan nay."
)


def ascii_sms(text: str, limit: int = 60) -> str:
    """Vietnamese without diacritics (GSM-7 SMS), shortened to ``limit`` characters."""
    plain = unicodedata.normalize("NFKD", text.replace("Đ", "D").replace("đ", "d"))
    plain = "".join(c for c in plain if not unicodedata.combining(c) and c.isprintable())
    plain = plain.encode("ascii", "ignore").decode()
    return plain if len(plain) <= limit else plain[: limit - 3].rstrip() + "..."


class Invitations:
    def __init__(self, store: Store, sender: SmsSender, clock: Clock) -> None:
        self.sent = store.collection("invitations")
        self.sender = sender
        self.clock = clock

    async def when_organisation_registration_opened_invite(
        self, event: CloudEvent[OrganisationRegistrationOpened]
    ) -> None:
        e = event.data
        reg_id = e.organisation_registration_id
        try:
            await self.sent.insert({"_id": reg_id, "status": "sending", "at": self.clock.now()})
        except DuplicateKey:
            done = await self.sent.get(reg_id)
            if done is not None and done["status"] == "sent":
                return  # a redelivery: the invitation went out
        text = INVITATION_TEXT.format(org=ascii_sms(e.organisation.name), tax_code=e.organisation.tax_code, code=reg_id)
        await self.sender.send(e.authorised_person_phone, text, reference=reg_id)  # a failure is retried
        await self.sent.update({"_id": reg_id}, {"$set": {"status": "sent", "sent_at": self.clock.now()}})
        log.info("organisation invitation sent", extra={"organisation_registration_id": reg_id})
