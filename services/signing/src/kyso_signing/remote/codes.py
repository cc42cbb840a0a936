"""The one-time code that confirms a signing request, as the otp service announces it: an SMS code bound to
the request's documents (``SmsOtpVerified``), or a SmartOTP transaction code over the same digest
(``SmartOtpTransactionVerified``). Recorded once on the waiting request; the code never reaches kyso's
signing service itself (see ``remote.requests``)."""

from __future__ import annotations

import logging
from typing import Any, ClassVar

from kyso_contracts import (
    CloudEvent,
    OtpPurpose,
    SmartOtpTransactionVerified,
    SmsOtpVerified,
)
from kyso_kit.changes import Changes
from kyso_kit.clock import Clock
from kyso_kit.store import Aggregates, Doc
from kyso_kit.timeutil import as_utc
from kyso_signing.remote.domain import (
    WAITING,
)

log = logging.getLogger(__name__)


class OneTimeCodes:
    """What ``RemoteSigning`` does with announced codes; its collection, clock and change feed are the request's."""

    SMS_PURPOSE: ClassVar[OtpPurpose] = OtpPurpose.SIGNATURE_CONFIRMATION  # the SMS codes this use case acts on
    requests: Aggregates
    clock: Clock
    changes: Changes

    async def _otp_verified(self, doc: Doc, otp: dict[str, Any], cause: str) -> None:
        if doc["status"] != WAITING or as_utc(doc["expires_at"]) <= self.clock.now():
            return
        done = await self.requests.update(
            {"_id": doc["_id"], "status": WAITING, "otp": {"$exists": False}}, {"$set": {"otp": otp}}, caused_by=cause
        )
        if done:
            self.changes.notify(doc["_id"])

    async def when_sms_otp_verified_record(self, event: CloudEvent[SmsOtpVerified]) -> None:
        e = event.data
        if e.purpose != self.SMS_PURPOSE:
            return
        doc = await self.requests.get(e.subject)
        if doc is None or doc["account_id"] != e.account_id or e.binding_sha256 != doc["documents_digest"]:
            log.warning("an SMS code that confirms no waiting request of its account", extra={"request": e.subject})
            return
        otp = {"method": "sms", "challenge_id": e.challenge_id, "verified_at": e.verified_at}
        await self._otp_verified(doc, otp, event.id)

    async def when_smartotp_verified_record(self, event: CloudEvent[SmartOtpTransactionVerified]) -> None:
        e = event.data
        doc = await self.requests.get(e.reference) if e.reference else None
        if doc is None:  # no reference given: the oldest waiting request of the account with these documents
            now = self.clock.now()
            same = [
                d
                for d in await self.requests.find({"account_id": e.account_id})
                if d["status"] == WAITING
                and d["documents_digest"] == e.transaction_digest
                and as_utc(d["expires_at"]) > now
            ]
            doc = min(same, key=lambda d: as_utc(d["created_at"])) if same else None
        if doc is None or doc["account_id"] != e.account_id or doc["documents_digest"] != e.transaction_digest:
            return  # a transaction code for something else (a payment, another batch)
        otp = {"method": "smartotp", "token_id": e.token_id, "time_step": e.time_step, "verified_at": e.verified_at}
        await self._otp_verified(doc, otp, event.id)
