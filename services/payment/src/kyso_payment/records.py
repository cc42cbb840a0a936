"""Payment's typed records (:mod:`kyso_kit.records`): the fields its decisions read and change.
Fields a record type does not name are kept as stored."""

from __future__ import annotations

from kyso_kit.records import Record, Utc

from .domain import PaymentStatus


class PaymentRecord(Record):
    """One order's payment (``payments``); ``txn_ref`` is the gateway reference of its current attempt."""

    order_id: str
    account_id: str
    amount_vnd: int
    status: PaymentStatus
    txn_ref: str
    created_at: Utc
