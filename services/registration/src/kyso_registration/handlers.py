"""Which handler takes which event, as a value: bootstrap subscribes from it and the service tests
deliver through it (:mod:`kyso_kit.routing`). One line per event; the handler's module says what it does."""

from __future__ import annotations

from kyso_contracts import (
    CertActivated,
    CertExpired,
    CertIssued,
    CertResumed,
    CertRevoked,
    CertSuspended,
    ConsentRejected,
    ContractSigned,
    IssuanceStopped,
    OrganisationRegistrationConfirmed,
    PaymentAmountMismatch,
    PaymentConfirmed,
    PaymentFailed,
    PaymentRefunded,
    SmsOtpVerified,
)
from kyso_kit.routing import Route

from .core import Registration

HANDLERS: tuple[Route[Registration], ...] = (
    Route(
        SmsOtpVerified,
        lambda c: c.identities.when_sms_otp_verified_mark_phone,
        wants=lambda c: lambda e: e.purpose == c.identities.SMS_PURPOSE,
    ),
    Route(OrganisationRegistrationConfirmed, lambda c: c.organisations.when_confirmed_place_orders),
    Route(PaymentConfirmed, lambda c: c.status.when_payment_confirmed_mark_paid),
    Route(PaymentFailed, lambda c: c.status.when_payment_failed_mark_failed),
    Route(PaymentRefunded, lambda c: c.status.when_payment_refunded_note),
    Route(PaymentAmountMismatch, lambda c: c.status.when_payment_amount_mismatch_stop),
    Route(ConsentRejected, lambda c: c.status.when_consent_rejected_ask_again),
    Route(ContractSigned, lambda c: c.status.when_contract_signed_mark_signed),
    Route(IssuanceStopped, lambda c: c.status.when_issuance_stopped_close),
    Route(CertIssued, lambda c: c.status.when_cert_issued_show_pending),
    Route(CertActivated, lambda c: c.status.when_cert_activated_show_active),
    Route(CertSuspended, lambda c: c.status.when_cert_suspended_show_suspended),
    Route(CertResumed, lambda c: c.status.when_cert_resumed_show_active),
    Route(CertRevoked, lambda c: c.status.when_cert_revoked_show_revoked),
    Route(CertExpired, lambda c: c.status.when_cert_expired_show_expired),
)
