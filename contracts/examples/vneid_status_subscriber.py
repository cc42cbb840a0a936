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

It is a tolerant reader and never loses a record silently. Fields and CloudEvents extension attributes
it does not know are ignored (``parse_event``), so kyso's next release does not break it. A kyso event
type it does not know at all is none of its business and is passed over. Anything else it cannot handle —
a record that is not a CloudEvent, a known event that fails validation, a new version of an event it
folds, an event it fails to apply — is *parked*: stored whole (value, key, topic, partition, offset,
reason) in the ``parked`` table of its SQLite, in a committed transaction, and logged at ERROR with its
coordinates, before the Kafka offset is committed past it. ``--parked`` lists them and
``--retry-parked`` applies again those that now read (after upgrading ``kyso-contracts``, say).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
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

log = logging.getLogger("vneid_status_subscriber")

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
CREATE TABLE IF NOT EXISTS parked (
    topic TEXT NOT NULL,
    partition INTEGER NOT NULL,
    "offset" INTEGER NOT NULL,
    key BLOB,
    value BLOB,
    reason TEXT NOT NULL,
    parked_at TEXT NOT NULL,
    PRIMARY KEY (topic, partition, "offset")
);
"""

FOLDED = (
    OrderPlaced,
    PaymentConfirmed,
    PaymentFailed,
    OrderCancelled,
    OrderExpired,
    IssuanceStopped,
    ContractSigned,
    CertIssued,
    CertActivated,
    CertSuspended,
    CertResumed,
    CertRevoked,
    CertExpired,
    PaymentRefunded,
)
"""The events that move what VNeID shows. Another version of one of these is not "none of our business":
it may carry a revocation, so it is parked until this subscriber is upgraded, never passed over."""

_FOLDED_NAMES = {e.event_type.rsplit(".", 1)[0] for e in FOLDED}


@dataclass(frozen=True)
class Parked:
    topic: str
    partition: int
    offset: int
    reason: str
    parked_at: str


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

    def receive(self, topic: str, partition: int, offset: int, value: bytes | None, key: bytes | None = None) -> str:
        """Take one Kafka record: ``"stored"`` (applied, or already applied, or not about a status),
        ``"ignored"`` (a kyso event type this subscriber does not know: not its business) or ``"parked"``.

        Whatever the record holds, it is either stored or parked before this returns, so the caller may
        commit the offset past it. Only a failure of this subscriber's own database raises — then nothing
        is committed and the record is read again after a restart."""
        outcome, reason = self._take(value)
        if outcome == "parked":
            self._park(topic, partition, offset, key, value, reason)
        return outcome

    def _take(self, value: bytes | None) -> tuple[str, str]:
        try:
            event = parse_event(value or b"")
        except UnknownEventType:
            why = _unknown_type(value or b"")
            return ("ignored", "") if why is None else ("parked", why)
        except Exception as exc:  # anything a record's content can make the parser raise
            return "parked", f"not a valid kyso event: {exc}"
        try:
            self.apply(event)
        except sqlite3.Error:
            raise  # our own database: not the record's fault, so stop without committing
        except Exception as exc:
            return "parked", f"{event.type} {event.id} could not be applied: {exc!r}"
        return "stored", ""

    def _park(self, topic: str, partition: int, offset: int, key: bytes | None, value: bytes | None, why: str) -> None:
        with self.db:
            self.db.execute(
                'INSERT OR REPLACE INTO parked (topic, partition, "offset", key, value, reason, parked_at)'
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (topic, partition, offset, key, value, why[:2000], datetime.now(UTC).isoformat()),
            )
        log.error(
            "PARKED record %s[%d]@%d (key %r), not applied: %s — it is in the parked table; fix and --retry-parked",
            topic,
            partition,
            offset,
            key,
            why,
            extra={"topic": topic, "partition": partition, "offset": offset},
        )

    def parked(self) -> list[Parked]:
        rows = self.db.execute(
            'SELECT topic, partition, "offset", reason, parked_at FROM parked ORDER BY topic, partition, "offset"'
        ).fetchall()
        return [Parked(*r) for r in rows]

    def retry_parked(self) -> int:
        """Apply again every parked record that now reads (say, after an upgrade); return how many left the
        table. A record leaves it only after it was stored, so a crash in between loses nothing."""
        rows = self.db.execute('SELECT topic, partition, "offset", value FROM parked').fetchall()
        released = 0
        for topic, partition, offset, value in rows:
            outcome, reason = self._take(value)
            with self.db:
                if outcome == "parked":
                    self.db.execute(
                        'UPDATE parked SET reason = ? WHERE topic = ? AND partition = ? AND "offset" = ?',
                        (reason[:2000], topic, partition, offset),
                    )
                    continue
                self.db.execute(
                    'DELETE FROM parked WHERE topic = ? AND partition = ? AND "offset" = ?', (topic, partition, offset)
                )
            released += 1
        return released

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


def _unknown_type(value: bytes) -> str | None:
    """Why a record of an unknown type must be parked; None when it is simply another kyso event."""
    try:
        doc = json.loads(value)
    except ValueError:
        return "not JSON"
    required = ("id", "source", "type")
    cloudevent = isinstance(doc, dict) and doc.get("specversion") == "1.0"
    if not (cloudevent and all(isinstance(doc.get(a), str) and doc[a] for a in required)):
        return "not a CloudEvents 1.0 event (specversion, id, source and type are required)"
    name = doc["type"].rsplit(".", 1)[0]
    if name in _FOLDED_NAMES:
        return f"{doc['type']}: a version this subscriber does not know of an event it folds (upgrade it)"
    return None


SUBSCRIBED = (topics.REGISTRATION, topics.PAYMENT, topics.SIGNING)


async def follow(
    book: StatusBook, bootstrap: str, group_id: str, stop: asyncio.Event | None = None, *, consumer: Any = None
) -> None:
    """Read kyso's topics into ``book`` until ``stop`` is set.

    Offsets are committed after each batch, once every record of it is stored or parked (durably, in
    SQLite): the committed offset never passes a record that is neither. ``consumer`` (an
    ``AIOKafkaConsumer`` or anything with its start/getmany/commit/stop) replaces the one made here."""
    if consumer is None:
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
                    book.receive(rec.topic, rec.partition, rec.offset, rec.value, rec.key)
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
    parser.add_argument("--parked", action="store_true", help="list the records parked as unreadable and exit")
    parser.add_argument("--retry-parked", action="store_true", help="apply parked records that now read, and exit")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    book = StatusBook(args.db)
    if args.show:
        print(json.dumps([r.__dict__ for r in book.of_citizen(args.show)], ensure_ascii=False, indent=2))
        return 0
    if args.parked:
        print(json.dumps([p.__dict__ for p in book.parked()], ensure_ascii=False, indent=2))
        return 0
    if args.retry_parked:
        released = book.retry_parked()
        print(f"{released} parked record(s) applied, {len(book.parked())} still parked")
        return 0
    try:
        asyncio.run(follow(book, args.bootstrap, args.group))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
