"""Kafka topic names. One topic per producing service; every event is keyed by its aggregate id."""

REGISTRATION = "kyso.registration.events.v1"
PAYMENT = "kyso.payment.events.v1"
SIGNING = "kyso.signing.events.v1"
OTP = "kyso.otp.events.v1"

ALL = (REGISTRATION, PAYMENT, SIGNING, OTP)

DEAD_LETTER_SUFFIX = ".dlq"


def dead_letter(topic: str) -> str:
    """Where a consumer parks a message it cannot handle: the original topic plus ``.dlq``."""
    return topic + DEAD_LETTER_SUFFIX
