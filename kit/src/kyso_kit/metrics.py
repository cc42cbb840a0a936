"""Prometheus metrics of one service process, served at ``GET /metrics``.

HTTP latency by route, event handling latency and failures by type, dead letters, consumer lag,
the outbox backlog (documents with unpublished events) and the age of its oldest event, and the CPU
worker pool's queue.
"""

from __future__ import annotations

import time

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .crypto import cpu_pool_queue

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    def __init__(self, service: str) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.http_latency = Histogram(
            "kyso_http_request_seconds",
            "HTTP request latency by route template, method and status",
            ["method", "route", "status"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.event_latency = Histogram(
            "kyso_event_handling_seconds",
            "Time to handle one event, by event type and outcome (handled, duplicate, dead_lettered)",
            ["event_type", "outcome"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.event_failures = Counter(
            "kyso_event_failures_total",
            "Failed attempts at handling an event (each retry counts), by event type and error type",
            ["event_type", "error_type"],
            registry=r,
        )
        self.dead_lettered = Counter(
            "kyso_dead_lettered_total", "Messages sent to a dead-letter topic", ["topic", "error_type"], registry=r
        )
        self.consumer_lag = Gauge(
            "kyso_consumer_lag_messages",
            "Messages of a partition not yet committed by this service's consumer group",
            ["topic", "partition"],
            registry=r,
        )
        self.outbox_backlog = Gauge(
            "kyso_outbox_backlog_documents", "Documents with unpublished events", ["collection"], registry=r
        )
        self.outbox_oldest = Gauge(
            "kyso_outbox_oldest_event_age_seconds", "Age of the oldest unpublished event", ["collection"], registry=r
        )
        self.published = Counter("kyso_outbox_published_total", "Events the relay published", registry=r)
        cpu = Gauge("kyso_cpu_pool_queue", "Calls waiting for or running in the CPU worker pool", registry=r)
        cpu.set_function(cpu_pool_queue)
        info = Gauge("kyso_service_info", "Which service this process is", ["service"], registry=r)
        info.labels(service=service).set(1)


class HttpMetricsMiddleware:
    """Pure ASGI: latency by the matched route's template (never the raw path: bounded labels)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def remember_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, remember_status)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            self.metrics.http_latency.labels(scope["method"], template, str(status)).observe(
                time.perf_counter() - start
            )


class ConsumerLag:
    """Committed offsets of the service's group against the partitions' end offsets."""

    def __init__(self, bootstrap: str, group: str, topics: list[str], metrics: Metrics) -> None:
        self._bootstrap, self._group, self._topics, self._metrics = bootstrap, group, topics, metrics
        self._admin: AIOKafkaAdminClient | None = None
        self._ends: AIOKafkaConsumer | None = None

    async def measure(self) -> None:
        if not self._topics:
            return
        if self._admin is None or self._ends is None:
            self._admin = AIOKafkaAdminClient(bootstrap_servers=self._bootstrap, client_id="kyso-lag")
            await self._admin.start()
            self._ends = AIOKafkaConsumer(bootstrap_servers=self._bootstrap, group_id=None, client_id="kyso-lag")
            await self._ends.start()
        committed = await self._admin.list_consumer_group_offsets(self._group)
        partitions = [TopicPartition(t, p) for t in self._topics for p in (self._ends.partitions_for_topic(t) or set())]
        ends = await self._ends.end_offsets(partitions)
        for tp, end in ends.items():
            done = committed.get(tp)
            position = done.offset if done is not None and done.offset >= 0 else 0
            self._metrics.consumer_lag.labels(tp.topic, str(tp.partition)).set(max(0, end - position))

    async def close(self) -> None:
        if self._admin is not None:
            await self._admin.close()
        if self._ends is not None:
            await self._ends.stop()
