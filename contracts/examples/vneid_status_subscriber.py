"""An outside subscriber, as VNeID would run one: it keeps each citizen's kyso certificate status from
kyso's events alone, depending on nothing of kyso but the ``kyso-contracts`` package (and a Kafka client).

    pip install kyso-contracts aiokafka
    python vneid_status_subscriber.py --bootstrap localhost:9092 --db vneid-status.sqlite
    python vneid_status_subscriber.py --db vneid-status.sqlite --show 001090012345

What it shows is what registration's ``/v1/vneid/status-queries`` answers, built independently: the
order's stage from every event that moves it, the certificate's serial and validity, money refunded.
Events come from several topics, so they may arrive in any order: a status only moves forward along the
order's path (a suspension and its resumption follow each other on one certificate, in order); every
event is applied once (its id is remembered in the same transaction); offsets are committed after the
events are stored, so a crash re-reads and re-applies nothing twice.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import sys
from dataclasses import dataclass
from typing import Any

from kyso_contracts import (
    CertActivated,
    CertExpired,
    CertIssued,
    CertResumed,
    CertRevoked,
    CertSuspended,
    CloudEvent,
    ContractSigned,
    IssuanceStopped,
    OrderCancelled,
    OrderExpired,
    OrderPlaced,
    PaymentConfirmed,
    PaymentFailed,
    PaymentRefunded,
    UnknownEventType,
    parse_event,
    topics,
)

# How far along its path each status is. A report of a stage below the current one is late news.
# Closed (cancelled, expired unpaid, nothing issued) sits above payment and below consent: a payment
# that raced the closing does not reopen it; a consent that got there first does (the order is served).
RANK = {
    "awaiting_payment": 0,
    "payment_failed": 1,
    "paid": 2,
    "cancellation_requested": 3,
    "cancelled": 4,
    "order_expired": 4,
    "issuance_failed": 4,
    "contract_signed": 5,
    "pending_activation": 6,
    "active": 7,
    "suspended": 7,  # same rank as active: the later of the two (in certificate order) wins
    "revoked": 9,
    "expired": 9,
}

SCHEMA = """
CREATE TABLE IF NOT EXISTS orders (
    order_id TEXT PRIMARY KEY,
    citizen_id TEXT,
    package_code TEXT,
    certificate_kind TEXT,
    organisation TEXT,
    status TEXT NOT NULL,
    serial_number TEXT,
    not_after TEXT,
    refunded_vnd INTEGER NOT NULL DEFAULT 0,
    placed_at TEXT
);
CREATE INDEX IF NOT EXISTS orders_by_citizen ON orders (citizen_id);
CREATE TABLE IF NOT EXISTS applied (event_id TEXT PRIMARY KEY);
"""


@dataclass(frozen=True)
class Row:
    order_id: str
    citizen_id: str | None
    package_code: str | None
    certificate_kind: str | None
    organisation: str | None
    status: str
    serial_number: str | None
    not_after: str | None
    refunded_vnd: int


class StatusBook:
    """The citizen's certificates as VNeID shows them, in SQLite."""

    def __init__(self, path: str = ":memory:") -> None:
        self.db = sqlite3.connect(path)
        self.db.executescript(SCHEMA)

    def apply(self, event: CloudEvent[Any]) -> bool:
        """Fold one event in, once; False if it was applied before or is not about an order's status."""
        with self.db:  # one transaction: the change and the event id
            if self.db.execute("SELECT 1 FROM applied WHERE event_id = ?", (event.id,)).fetchone():
                return False
            changed = self._fold(event.data)
            self.db.execute("INSERT INTO applied (event_id) VALUES (?)", (event.id,))
            return changed

    def _ensure(self, order_id: str) -> None:
        self.db.execute("INSERT OR IGNORE INTO orders (order_id, status) VALUES (?, 'awaiting_payment')", (order_id,))

    def _move(self, order_id: str, status: str, *, undo: str | None = None) -> bool:
        self._ensure(order_id)
        (current,) = self.db.execute("SELECT status FROM orders WHERE order_id = ?", (order_id,)).fetchone()
        forward = RANK[status] > RANK[current] or (undo is not None and current == undo)
        if forward:
            self.db.execute("UPDATE orders SET status = ? WHERE order_id = ?", (status, order_id))
        return forward

    def _fold(self, d: Any) -> bool:
        if isinstance(d, OrderPlaced):
            self._ensure(d.order_id)
            org = d.organisation.model_dump_json() if d.organisation else None
            self.db.execute(
                "UPDATE orders SET citizen_id = ?, package_code = ?, certificate_kind = ?, organisation = ?,"
                " placed_at = ? WHERE order_id = ?",
                (d.subscriber.citizen_id, d.package_code, d.certificate_kind, org, d.placed_at.isoformat(), d.order_id),
            )
            return True
        if isinstance(d, PaymentConfirmed):
            return self._move(d.order_id, "paid")
        if isinstance(d, PaymentFailed):
            return self._move(d.order_id, "payment_failed")
        if isinstance(d, OrderCancelled):
            return self._move(d.order_id, "cancellation_requested" if d.after_payment else "cancelled")
        if isinstance(d, OrderExpired):
            return self._move(d.order_id, "order_expired")
        if isinstance(d, IssuanceStopped):
            closed = {"cancelled": "cancelled", "order_expired": "order_expired"}.get(d.reason, "issuance_failed")
            return self._move(d.order_id, closed)
        if isinstance(d, ContractSigned):
            return self._move(d.order_id, "contract_signed")
        if isinstance(d, CertIssued):
            self._ensure(d.order_id)
            self.db.execute(
                "UPDATE orders SET serial_number = ?, not_after = ? WHERE order_id = ?",
                (d.serial_number, d.not_after.isoformat(), d.order_id),
            )
            return self._move(d.order_id, "pending_activation")
        if isinstance(d, CertActivated):
            return self._move(d.order_id, "active")
        if isinstance(d, CertSuspended):
            return self._move(d.order_id, "suspended", undo="active")
        if isinstance(d, CertResumed):
            return self._move(d.order_id, "active", undo="suspended")
        if isinstance(d, CertRevoked):
            return self._move(d.order_id, "revoked")
        if isinstance(d, CertExpired):
            return self._move(d.order_id, "expired")
        if isinstance(d, PaymentRefunded):
            self._ensure(d.order_id)
            self.db.execute(
                "UPDATE orders SET refunded_vnd = refunded_vnd + ? WHERE order_id = ?", (d.amount_vnd, d.order_id)
            )
            return True
        return False

    def of_citizen(self, citizen_id: str) -> list[Row]:
        """The citizen's orders, newest first; orders closed before payment with nothing to show are left out."""
        rows = self.db.execute(
            "SELECT order_id, citizen_id, package_code, certificate_kind, organisation, status, serial_number,"
            " not_after, refunded_vnd FROM orders WHERE citizen_id = ? ORDER BY placed_at DESC",
            (citizen_id,),
        ).fetchall()
        shown = [Row(*r) for r in rows]
        return [
            r
            for r in shown
            if not (r.status in {"cancelled", "order_expired"} and r.serial_number is None and not r.refunded_vnd)
        ]


SUBSCRIBED = (topics.REGISTRATION, topics.PAYMENT, topics.SIGNING)


async def follow(book: StatusBook, bootstrap: str, group_id: str, stop: asyncio.Event | None = None) -> None:
    """Read kyso's topics into ``book`` until ``stop`` is set; offsets are committed after each batch is stored."""
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(
        *SUBSCRIBED,
        bootstrap_servers=bootstrap,
        group_id=group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        while stop is None or not stop.is_set():
            batches = await consumer.getmany(timeout_ms=200)
            for records in batches.values():
                for rec in records:
                    try:
                        event = parse_event(rec.value)
                    except UnknownEventType:
                        continue  # a newer kyso event this subscriber does not know: not its business
                    except ValueError as exc:
                        print(f"skipping a malformed record at {rec.topic}:{rec.offset}: {exc}", file=sys.stderr)
                        continue
                    book.apply(event)
            if batches:
                await consumer.commit()
    finally:
        await consumer.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--db", default="vneid-status.sqlite")
    parser.add_argument("--bootstrap", default="localhost:9092")
    parser.add_argument("--group", default="vneid-status")
    parser.add_argument("--show", metavar="CITIZEN_ID", help="print a citizen's certificates and exit")
    args = parser.parse_args(argv)
    book = StatusBook(args.db)
    if args.show:
        print(json.dumps([r.__dict__ for r in book.of_citizen(args.show)], ensure_ascii=False, indent=2))
        return 0
    try:
        asyncio.run(follow(book, args.bootstrap, args.group))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
