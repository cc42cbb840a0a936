"""Kafka plumbing with safe defaults: producer acks=all + idempotence, offsets committed only past
handled messages (in batches), one consumer group per service reading from the earliest offset,
partitions in parallel and each in order, bounded retry, dead-letter topics."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Union

from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError, TopicAlreadyExistsError
from aiokafka.structs import OffsetAndMetadata
from faststream import AckPolicy
from faststream.kafka import KafkaBroker, KafkaMessage
from opentelemetry.trace import SpanKind

from kyso_contracts import (
    CONTENT_TYPE,
    CloudEvent,
    Payload,
    UnknownEventType,
    envelope_model,
    parse_event,
    topics,
)

from .inbox import Inbox
from .logs import correlation_id
from .metrics import Metrics
from .settings import ServiceSettings
from .tracing import continued

log = logging.getLogger(__name__)

Handler = Callable[[CloudEvent[Any]], Awaitable[None]]


def make_broker(settings: ServiceSettings) -> KafkaBroker:
    return KafkaBroker(
        settings.kafka_bootstrap_servers,
        client_id=f"kyso-{settings.service_name}",
        acks="all",
        enable_idempotence=True,
        # We validate envelopes ourselves so that a poison message can be dead-lettered instead of
        # looping; handler annotations still describe the payloads for the AsyncAPI document.
        apply_types=False,
        logger=logging.getLogger("faststream"),
        log_level=logging.DEBUG,
        description=f"kyso {settings.service_name} service. {CONTENT_MODE}",
    )


async def ensure_topics(bootstrap: str, names: Iterable[str], partitions: int = 3) -> None:
    """Create topics (and their dead-letter topics) so consumers never race auto-creation."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="kyso-admin")
    await admin.start()
    try:
        wanted = {n for t in names for n in (t, topics.dead_letter(t))}
        existing = set(await admin.list_topics())
        # The broker stamps each message when it appends it (not the producer's clock), so the time
        # between an event and the event it caused is measurable from Kafka alone.
        config = {"message.timestamp.type": "LogAppendTime"}
        missing = [NewTopic(n, partitions, 1, topic_configs=config) for n in sorted(wanted - existing)]
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(missing)
    finally:
        await admin.close()


CONTENT_MODE = (
    "Every message is one CloudEvents 1.0 event in *structured* content mode (CloudEvents Kafka protocol "
    "binding §3.2): the Kafka value is the whole event as JSON, the `content-type` header is "
    f"`{CONTENT_TYPE}`, the key is the event's `subject` (its aggregate id), and no `ce_` headers are sent "
    "(the official SDKs take any `ce_` header to mean binary mode)."
)


async def publish_entry(broker: KafkaBroker, entry: dict[str, Any]) -> None:
    """Publish one outbox entry as a structured-mode CloudEvent keyed by its aggregate id (see CONTENT_MODE)."""
    value = entry["value"]
    await broker.publish(
        json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode(),
        entry["topic"],
        key=entry["key"].encode(),
        headers={"content-type": CONTENT_TYPE},
        correlation_id=value.get("correlationid"),
    )


async def _raw(msg: Any) -> Any:
    return msg


class EventConsumer:
    """Routes events to service handlers; dedupes, retries with backoff, then dead-letters.

    A tolerant reader that never skips what it cannot read: unknown fields and extension attributes are
    ignored, event types it does not consume are passed over, and anything else it cannot read (not a
    CloudEvent, invalid, another version of a type it handles) is dead-lettered, loudly."""

    def __init__(self, settings: ServiceSettings, broker: KafkaBroker, inbox: Inbox, metrics: Metrics) -> None:
        self._settings = settings
        self._broker = broker
        self._inbox = inbox
        self._metrics = metrics
        self._uncommitted: dict[Any, dict[TopicPartition, int]] = {}
        self._handlers: dict[str, Handler] = {}
        self._wants: dict[str, Callable[[Any], bool]] = {}
        self._payloads: dict[str, list[type[Payload]]] = {}
        self.dead_lettered = 0
        self._installed = False

    def on(self, payload: type[Payload], wants: Callable[[Any], bool] | None = None) -> Callable[[Handler], Handler]:
        """Handle events of ``payload``'s type; with ``wants``, only those whose payload it accepts — the others
        (say, an SMS code verified for a purpose another service acts on) cost no database round trip."""

        def register(fn: Handler) -> Handler:
            if payload.event_type in self._handlers:
                raise ValueError(f"{payload.event_type} already has a handler")
            self._handlers[payload.event_type] = fn
            if wants is not None:
                self._wants[payload.event_type] = wants
            self._payloads.setdefault(payload.topic, []).append(payload)
            return fn

        return register

    @property
    def topics(self) -> list[str]:
        return sorted(self._payloads)

    def install(self) -> None:
        """Register one Kafka subscriber per topic (idempotent; also used to render the AsyncAPI document)."""
        if self._installed:
            return
        self._installed = True
        for topic, payloads in self._payloads.items():

            async def consume(body: Any) -> None:
                try:
                    await self.handle(body)
                except BaseException:
                    await body.nack()  # rewind the partition: this message comes back, nothing is skipped
                    raise
                self._handled(body)

            envelopes = tuple(envelope_model(p) for p in payloads)
            consume.__annotations__ = {
                "body": Union[envelopes] if len(envelopes) > 1 else envelopes[0],
                "return": None,
            }
            consume.__name__ = f"{self._settings.service_name}_{topic.replace('.', '_')}"
            self._broker.subscriber(
                topic,
                group_id=self._settings.consumer_group,
                auto_offset_reset="earliest",
                # Offsets are committed by commit_handled(): in batches, and only past handled messages.
                ack_policy=AckPolicy.MANUAL,
                # Partitions in parallel (one consumer each), each partition in order: one
                # aggregate's events (one key, one partition) are never handled out of order.
                max_workers=self._settings.consumer_workers,
                # fetch_max_wait_ms stays at aiokafka's 500 ms: its fetcher sends no new fetch to a broker
                # while one is in flight, so a partition whose records were still buffered when a fetch left
                # waits for that fetch to end. At 5 s the idle stack used 0.03 cores less, but a journey
                # stalled for 4.3 s (bench/perf.py, one journey at a time).
                decoder=_raw,
                title=f"{topic}:{self._settings.service_name}",
                description="Handles: " + ", ".join(p.__name__ for p in payloads),
            )(consume)

    def _handled(self, msg: KafkaMessage) -> None:
        """Remember that this message (and so its partition up to it) is done; see commit_handled()."""
        record: Any = msg.raw_message
        consumer = getattr(msg, "consumer", None)
        if consumer is not None and record is not None and not isinstance(record, tuple):
            done = self._uncommitted.setdefault(consumer, {})
            done[TopicPartition(record.topic, record.partition)] = record.offset + 1

    async def commit_handled(self) -> int:
        """Commit, per consumer, the offset after the last *handled* message of each partition.

        Each consumer handles its partitions one message at a time, in order, so everything before a
        recorded offset has been handled: a commit never passes an unhandled event. Batching saves a
        broker round trip per message. A commit refused after a rebalance is dropped — the partition's
        new owner redelivers those messages and the idempotent handlers ignore them.
        """
        pending, self._uncommitted = self._uncommitted, {}
        committed = 0
        for consumer, offsets in pending.items():
            try:
                await consumer.commit({tp: OffsetAndMetadata(o, "") for tp, o in offsets.items()})
                committed += len(offsets)
            except (CommitFailedError, IllegalStateError, KafkaError) as exc:
                log.info("offset commit dropped after a rebalance: %r", exc)
        return committed

    async def handle(self, msg: KafkaMessage) -> None:
        record = msg.raw_message
        body: bytes = msg.body
        try:
            # Tolerant reader: payload fields and extension attributes this version does not declare are
            # ignored (a newer kyso adds optional ones without a new version, e.g. during a rolling deploy).
            event = parse_event(body)
        except UnknownEventType:
            if not _looks_like_cloudevent(body):
                await self._dead_letter(record, body, "not_a_cloudevent", "unknown or missing event type", 0)
            elif (other := self._other_version_of_handled(body)) is not None:
                # Another major version of an event we act on is a breaking change we cannot read: passing
                # over it would lose the fact silently, so it waits in the dead-letter topic for a replay.
                await self._dead_letter(
                    record, body, "unknown_version", f"{other}: this consumer reads another version", 0
                )
            return  # otherwise a type we do not consume: none of our business
        except ValueError as exc:
            kind = "invalid_event" if _looks_like_cloudevent(body) else "not_a_cloudevent"
            await self._dead_letter(record, body, kind, str(exc)[:2000], 0)
            return
        handler = self._handlers.get(event.type)
        if handler is None:
            return
        wants = self._wants.get(event.type)
        if wants is not None and not wants(event.data):
            return  # not one this service acts on: no duplicate check, nothing to remember
        token = correlation_id.set(event.correlationid)
        started = time.perf_counter()
        outcome = "handled"
        attributes = {"cloudevents.event_id": event.id, "cloudevents.event_type": event.type}
        carrier = {"traceparent": event.traceparent, "tracestate": event.tracestate}
        try:
            with continued(f"handle {event.type}", carrier, SpanKind.CONSUMER, **attributes):
                outcome = await self._attempt(event, handler, record, body)
        finally:
            self._metrics.event_latency.labels(event.type, outcome).observe(time.perf_counter() - started)
            correlation_id.reset(token)

    def _other_version_of_handled(self, body: bytes) -> str | None:
        """The event's type, if it is another version (``.v<n>``) of a type this consumer handles."""
        etype = str(json.loads(body)["type"])
        name = etype.rsplit(".", 1)[0]
        return etype if any(t.rsplit(".", 1)[0] == name for t in self._handlers) else None

    async def _attempt(self, event: CloudEvent[Any], handler: Handler, record: Any, body: bytes) -> str:
        """Handle once per event id, retrying technical faults with backoff, then dead-letter."""
        attempts = self._settings.consumer_max_attempts
        for attempt in range(1, attempts + 1):
            try:
                if await self._inbox.seen(event.id):
                    log.debug("duplicate event ignored", extra={"event_id": event.id})
                    return "duplicate"
                await handler(event)
                await self._inbox.remember(event.id, event.type)
                return "handled"
            except Exception as exc:
                self._metrics.event_failures.labels(event.type, type(exc).__name__).inc()
                if attempt == attempts:
                    log.exception(
                        "event failed %d times; dead-lettering",
                        attempts,
                        extra={"event_id": event.id, "event_type": event.type},
                    )
                    await self._dead_letter(record, body, type(exc).__name__, str(exc)[:2000], attempt)
                    return "dead_lettered"
                delay = self._settings.consumer_backoff_seconds * 2 ** (attempt - 1)
                log.warning(
                    "event handling failed (attempt %d/%d), retrying in %.2fs: %r",
                    attempt,
                    attempts,
                    delay,
                    exc,
                    extra={"event_id": event.id},
                )
                await asyncio.sleep(delay)
        return "dead_lettered"

    async def _dead_letter(self, record: Any, body: bytes, error_type: str, error: str, attempts: int) -> None:
        # If this publish fails the exception propagates, the offset is not committed and the
        # message comes back: a dead-letter is never silently dropped.
        await self._broker.publish(
            body,
            topics.dead_letter(record.topic),
            key=record.key,
            headers={
                "x-original-topic": record.topic,
                "x-original-partition": str(record.partition),
                "x-original-offset": str(record.offset),
                "x-consumer-group": self._settings.consumer_group,
                "x-error-type": error_type,
                "x-error": error,
                "x-attempts": str(attempts),
            },
        )
        self.dead_lettered += 1
        self._metrics.dead_lettered.labels(record.topic, error_type).inc()
        log.error(
            "message dead-lettered", extra={"topic": record.topic, "offset": record.offset, "error_type": error_type}
        )


def _looks_like_cloudevent(body: bytes) -> bool:
    try:
        doc = json.loads(body)
    except ValueError:
        return False
    return isinstance(doc, dict) and doc.get("specversion") == "1.0" and isinstance(doc.get("type"), str)


def declare_publishers(broker: KafkaBroker, payloads: Iterable[type[Payload]]) -> None:
    """Declare what a service publishes so the AsyncAPI document shows it (the relay does the sending)."""
    by_topic: dict[str, list[type[Payload]]] = {}
    for p in payloads:
        by_topic.setdefault(p.topic, []).append(p)
    for topic, ps in by_topic.items():
        envelopes = tuple(envelope_model(p) for p in ps)
        broker.publisher(
            topic,
            schema=Union[envelopes] if len(envelopes) > 1 else envelopes[0],
            title=f"{topic}:publish",
            description="Publishes: " + ", ".join(p.__name__ for p in ps),
        )
