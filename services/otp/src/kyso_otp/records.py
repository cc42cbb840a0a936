"""Otp's typed records (:mod:`kyso_kit.records`): the fields its decisions read and change.
Fields a record type does not name are kept as stored."""

from __future__ import annotations

from kyso_kit.records import Record, Utc

from .domain import TokenStatus


class Token(Record):
    """A SmartOTP token (``smartotp_tokens``), from its activation code to its device and counters."""

    account_id: str
    status: TokenStatus
    operator_locked: bool = False
    activation_hash: str | None = None
    activation_failures: int = 0
    activation_expires_at: Utc | None = None
    device_id: str | None = None
    seed: str | None = None
    drift: int = 0
    last_step: int = -1
    failures: int = 0
