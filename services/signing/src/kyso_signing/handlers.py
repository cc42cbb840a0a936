"""Which handler takes which event: the signing service's routing as a value. Bootstrap subscribes from
it (``kyso_kit.routing.wire``) and the service tests deliver through it (``deliver``), so the tests run
the routing production runs.

Where one event has several handlers they run in the order written, each idempotent on its own, and a
failure redelivers the event to all of them. An SMS code is routed once, by its purpose, to the one use
case that asked for codes of that purpose; codes of other purposes (the otp service's own) are not read.

What happens on ``CertRevoked``? Nothing here: signing does not consume it. The revocation is one
guarded write in ``credentials/lifecycle.py`` (status, revision, the event, and the CA registry's mark);
right after it ``credentials/registration.py`` records the serial in ``pki/registry.py`` and publishes
the CRL, OCSP answers from the registry, and the certificate's CSC SADs end (``remote.end_sads_of``).
The other services react to the event: see ``contracts/asyncapi.json``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from kyso_contracts import (
    CertActivated,
    CloudEvent,
    ContractSigned,
    OrderCancelled,
    OrderExpired,
    OrderPlaced,
    OtpPurpose,
    PaymentConfirmed,
    SignatureCompleted,
    SignatureExpired,
    SignatureRejected,
    SmartOtpTransactionVerified,
    SmsOtpVerified,
)
from kyso_kit.routing import Handler, Route
from kyso_signing.core import SigningCore


def each(name: str, *handlers: Handler) -> Handler:
    """One handler that runs ``handlers`` in order."""

    async def run(event: CloudEvent[Any]) -> None:
        for handle in handlers:
            await handle(event)

    run.__name__ = name
    return run


def sms_codes(c: SigningCore) -> Mapping[OtpPurpose, Handler]:
    """The SMS-code purposes signing acts on, each with the one use case that asked for such codes."""
    return {
        c.contracts.SMS_PURPOSE: c.contracts.when_sms_otp_verified_sign_contract,
        c.lifecycle.SMS_PURPOSE: c.lifecycle.when_sms_otp_verified_apply_request,
        c.remote.SMS_PURPOSE: c.remote.when_sms_otp_verified_record,
        c.pin.SMS_PURPOSE: c.pin.when_sms_otp_verified_allow_unlock,
    }


def by_purpose(c: SigningCore) -> Handler:
    table = sms_codes(c)

    async def when_sms_otp_verified(event: CloudEvent[SmsOtpVerified]) -> None:
        await table[event.data.purpose](event)

    return when_sms_otp_verified


def wanted_codes(c: SigningCore) -> Callable[[SmsOtpVerified], bool]:
    purposes = frozenset(sms_codes(c))
    return lambda e: e.purpose in purposes


HANDLERS: tuple[Route[SigningCore], ...] = (
    Route(OrderPlaced, lambda c: c.contracts.when_order_placed_remember_order),
    Route(PaymentConfirmed, lambda c: c.contracts.when_payment_confirmed_prepare_contract),
    Route(OrderCancelled, lambda c: c.contracts.when_order_closed_stop),
    Route(OrderExpired, lambda c: c.contracts.when_order_closed_stop),
    Route(ContractSigned, lambda c: c.contracts.when_contract_signed_seal),
    Route(SmsOtpVerified, by_purpose, wants=wanted_codes),
    Route(SmartOtpTransactionVerified, lambda c: c.remote.when_smartotp_verified_record),
    Route(
        SignatureCompleted,
        lambda c: each(
            "when_signature_completed",
            c.audit.when_signature_completed_record,
            c.webhooks.when_signing_request_ended_notify,
            c.acceptance.when_signature_completed_finish,
            c.pdfs.when_signature_completed_finish,
        ),
    ),
    Route(SignatureRejected, lambda c: c.webhooks.when_signing_request_ended_notify),
    Route(SignatureExpired, lambda c: c.webhooks.when_signing_request_ended_notify),
    Route(CertActivated, lambda c: c.lifecycle.when_cert_activated_supersede_previous),
)
