"""kyso event contracts — the single source of truth for topics, event types, keys and payloads.

Depends on nothing but pydantic, so any outside subscriber (VNeID, notification senders,
analytics) can install it on its own.
"""

from . import topics
from .envelope import CONTENT_TYPE, CloudEvent, Payload, new_event_id, utcnow, wrap
from .events import (
    ALL_EVENTS,
    BY_TYPE,
    AccountCreated,
    CertActivated,
    CertExpired,
    CertIssued,
    CertResumed,
    CertRevoked,
    CertSuspended,
    ConsentRejected,
    ContractSigned,
    OrderPlaced,
    OtpEnrolled,
    OtpMethodChanged,
    OtpMethodLocked,
    OtpMethodUnlocked,
    OtpTokenLocked,
    OtpTokenRevoked,
    PaymentAmountMismatch,
    PaymentConfirmed,
    PaymentFailed,
    SmsOtpVerified,
    SubscriberIdentity,
)
from .registry import UnknownEventType, envelope_model, parse_event
from .types import KeyAlgorithm, OtpPurpose

__all__ = [
    "ALL_EVENTS",
    "BY_TYPE",
    "CONTENT_TYPE",
    "AccountCreated",
    "CertActivated",
    "CertExpired",
    "CertIssued",
    "CertResumed",
    "CertRevoked",
    "CertSuspended",
    "CloudEvent",
    "ConsentRejected",
    "ContractSigned",
    "KeyAlgorithm",
    "OrderPlaced",
    "OtpEnrolled",
    "OtpMethodChanged",
    "OtpMethodLocked",
    "OtpMethodUnlocked",
    "OtpPurpose",
    "OtpTokenLocked",
    "OtpTokenRevoked",
    "Payload",
    "PaymentAmountMismatch",
    "PaymentConfirmed",
    "PaymentFailed",
    "SmsOtpVerified",
    "SubscriberIdentity",
    "UnknownEventType",
    "envelope_model",
    "new_event_id",
    "parse_event",
    "topics",
    "utcnow",
    "wrap",
]
