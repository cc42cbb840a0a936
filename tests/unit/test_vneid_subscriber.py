"""The example outside subscriber (contracts/examples): it keeps a citizen's status from events that
arrive in any order and more than once, with nothing of kyso but the contracts package; it reads the next
kyso release's events, and parks (never skips) a record it cannot handle."""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
from datetime import UTC, date, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from vneid_status_subscriber import FOLDED, StatusBook, follow

from kyso_contracts import (
    ALL_EVENTS,
    CertActivated,
    CertIssued,
    CertResumed,
    CertRevoked,
    CertSuspended,
    OrderCancelled,
    OrderPlaced,
    Payload,
    PaymentConfirmed,
    PaymentRefunded,
    SubscriberIdentity,
    topics,
    wrap,
)

from .test_readers_events import future_event

AT = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
CITIZEN = "001099012345"


def ev(payload: Any) -> Any:
    return wrap(payload, source="/kyso/test", correlation_id="c", time=AT)


def placed(order_id: str) -> Any:
    return ev(
        OrderPlaced(
            order_id=order_id, account_id="a1", registration_id="r1",
            subscriber=SubscriberIdentity(citizen_id=CITIZEN, full_name="Lê Thị Hoa", date_of_birth=date(1990, 1, 2)),
            email="a@example.vn", package_code="PERSONAL_1Y", validity_years=1, amount_vnd=800_000, placed_at=AT,
        )
    )  # fmt: skip


def test_events_in_any_order_and_twice_give_the_status_once() -> None:
    book = StatusBook()
    ref = {"certificate_id": "c1", "order_id": "o1", "account_id": "a1", "serial_number": "1f"}
    issued = ev(
        CertIssued(**ref, subject_dn="CN=x", not_before=AT, not_after=AT.replace(year=2027), certificate_pem="pem")
    )
    activated = ev(
        CertActivated(**ref, activated_at=AT, acceptance_record_sha256="a" * 64, acceptance_signature_b64="cw==")
    )
    paid = ev(PaymentConfirmed(
        payment_id="p1", order_id="o1", account_id="a1", amount_vnd=800_000, provider="vnpay",
        provider_transaction_no="1", confirmed_at=AT,
    ))  # fmt: skip
    for e in (issued, activated, activated, paid, placed("o1")):  # the certificate's news came first
        book.apply(e)
    [row] = book.of_citizen(CITIZEN)
    assert (row.status, row.serial_number) == ("active", "1f")
    book.apply(ev(CertSuspended(**ref, suspended_at=AT, suspended_by="subscriber")))
    assert book.of_citizen(CITIZEN)[0].status == "suspended"
    book.apply(ev(CertResumed(**ref, resumed_at=AT, resumed_by="subscriber")))
    assert book.of_citizen(CITIZEN)[0].status == "active"

    # closed unpaid: left out; a refund is counted once
    book.apply(placed("o2"))
    cancelled = ev(OrderCancelled(order_id="o2", account_id="a1", amount_vnd=800_000, cancelled_at=AT))
    book.apply(cancelled)
    assert [r.order_id for r in book.of_citizen(CITIZEN)] == ["o1"]
    refund = ev(PaymentRefunded(
        payment_id="p2", order_id="o2", account_id="a1", amount_vnd=800_000, reason="late_payment",
        provider="vnpay", provider_transaction_no="2", refunded_at=AT,
    ))  # fmt: skip
    assert book.apply(refund) and not book.apply(refund)
    shown = {r.order_id: r for r in book.of_citizen(CITIZEN)}
    assert shown["o2"].status == "cancelled" and shown["o2"].refunded_vnd == 800_000


# --------------------------------------------------------------------------- tolerant, and never loses a record


def record(offset: int, value: bytes | None, topic: str = topics.SIGNING, key: bytes | None = b"k") -> Any:
    return SimpleNamespace(topic=topic, partition=1, offset=offset, key=key, value=value)


def _status_rows(book: StatusBook) -> list[tuple[Any, ...]]:
    return book.db.execute("SELECT * FROM orders ORDER BY order_id").fetchall()


@pytest.mark.parametrize("model", ALL_EVENTS, ids=lambda m: m.__name__)
def test_reads_every_event_type_from_the_next_release(model: type[Payload]) -> None:
    """An added payload field (at every level) and an added extension attribute change nothing: the
    record is stored exactly as today's event of that type would be, and nothing is parked."""
    today, future = future_event(model)
    as_today, as_next = StatusBook(), StatusBook()
    assert as_today.receive(model.topic, 0, 5, today.model_dump_json().encode()) == "stored"
    assert as_next.receive(model.topic, 0, 5, json.dumps(future).encode()) == "stored"
    assert as_next.parked() == [] and _status_rows(as_next) == _status_rows(as_today)
    if model in FOLDED:
        assert _status_rows(as_next), f"{model.__name__} should move an order"


class FakeConsumer:
    """aiokafka's consumer as ``follow`` uses it. At each commit it looks at the SQLite file through a
    *separate* connection: what a restarted subscriber would find."""

    def __init__(self, db_path: str, batches: list[list[Any]], stop: asyncio.Event) -> None:
        self._db_path, self._batches, self._stop = db_path, batches, stop
        self.commits: list[tuple[set[int], set[str]]] = []

    async def start(self) -> None:
        return None

    async def getmany(self, timeout_ms: int) -> dict[Any, list[Any]]:
        if not self._batches:
            self._stop.set()
            return {}
        return {("tp", 1): self._batches.pop(0)}

    async def commit(self) -> None:
        seen = sqlite3.connect(self._db_path)
        parked = {o for (o,) in seen.execute('SELECT "offset" FROM parked')}
        applied = {e for (e,) in seen.execute("SELECT event_id FROM applied")}
        seen.close()
        self.commits.append((parked, applied))

    async def stop(self) -> None:
        return None


async def test_a_record_it_cannot_handle_is_parked_before_the_offset_passes_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """What we chose: the committed offset may pass a record only once the record is applied or *parked*
    — stored whole in the ``parked`` table, committed to SQLite — and logged at ERROR with its topic,
    partition and offset. After a restart the parked records are in the table; none was skipped."""
    path = str(tmp_path / "vneid.sqlite")
    good_event, good = future_event(PaymentConfirmed)
    _, missing_field = future_event(CertRevoked)
    del missing_field["data"]["serial_number"]
    _, next_version = future_event(CertRevoked)
    next_version["type"] = "vn.kyso.signing.cert_revoked.v2"  # a revocation we cannot read: never passed over
    _, unrelated = future_event(CertRevoked)
    unrelated["type"] = "vn.kyso.signing.something_new.v1"  # a kyso event of no concern to VNeID
    batch = [
        record(10, placed("o9").model_dump_json().encode(), topics.REGISTRATION),
        record(11, b"\x00not json"),
        record(12, json.dumps(missing_field).encode()),
        record(13, json.dumps({"hello": "world"}).encode()),
        record(14, json.dumps(next_version).encode()),
        record(15, json.dumps(unrelated).encode()),
        record(16, None),
        record(17, json.dumps(good).encode(), topics.PAYMENT),
    ]
    stop = asyncio.Event()
    consumer = FakeConsumer(path, [batch], stop)
    caplog.set_level(logging.ERROR, logger="vneid_status_subscriber")
    await follow(StatusBook(path), "unused:9092", "g", stop, consumer=consumer)

    [(parked_at_commit, applied_at_commit)] = consumer.commits
    assert parked_at_commit == {11, 12, 13, 14, 16}
    assert good_event.id in applied_at_commit and len(applied_at_commit) == 2  # placed o9 and the payment

    restarted = StatusBook(path)
    parked = restarted.parked()
    assert [(p.topic, p.partition, p.offset) for p in parked] == [(topics.SIGNING, 1, o) for o in (11, 12, 13, 14, 16)]
    reasons = {p.offset: p.reason for p in parked}
    assert "serial_number" in reasons[12] and "cert_revoked.v2" in reasons[14]
    (value,) = restarted.db.execute('SELECT value FROM parked WHERE "offset" = 12').fetchone()
    assert json.loads(value) == missing_field  # kept whole, for whoever fixes it
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert sorted(r.offset for r in errors) == [11, 12, 13, 14, 16]  # type: ignore[attr-defined]
    assert all(f"{topics.SIGNING}[1]@{r.offset}" in r.getMessage() for r in errors)  # type: ignore[attr-defined]


async def test_its_own_database_failing_commits_nothing(tmp_path: Path) -> None:
    """A failure that is not the record's (the subscriber's SQLite) stops it before the commit: the record
    is read again after the restart instead of being parked or passed."""
    path = str(tmp_path / "vneid.sqlite")
    book, stop = StatusBook(path), asyncio.Event()
    _, good = future_event(PaymentConfirmed)

    def disk_full(event: Any) -> bool:
        raise sqlite3.OperationalError("database or disk is full")

    book.apply = disk_full  # type: ignore[method-assign]
    consumer = FakeConsumer(path, [[record(3, json.dumps(good).encode(), topics.PAYMENT)]], stop)
    with pytest.raises(sqlite3.OperationalError):
        await follow(book, "unused:9092", "g", stop, consumer=consumer)
    assert consumer.commits == [] and StatusBook(path).parked() == []


def test_a_parked_record_is_applied_once_it_reads(caplog: pytest.LogCaptureFixture) -> None:
    book = StatusBook()
    book.apply(placed("o1"))
    paid, _ = future_event(PaymentConfirmed)
    paid_json = paid.model_dump_json().replace(paid.data.order_id, "o1").encode()  # type: ignore[attr-defined]
    fold = book._fold
    book._fold = lambda d: (_ for _ in ()).throw(RuntimeError("a bug in this subscriber"))  # type: ignore[method-assign]
    assert book.receive(topics.PAYMENT, 0, 4, paid_json) == "parked"
    assert "a bug in this subscriber" in book.parked()[0].reason
    assert book.of_citizen(CITIZEN)[0].status == "awaiting_payment"
    assert book.retry_parked() == 0 and len(book.parked()) == 1  # still failing: stays parked
    book._fold = fold  # type: ignore[method-assign]
    assert book.retry_parked() == 1 and book.parked() == []
    assert book.of_citizen(CITIZEN)[0].status == "paid"
