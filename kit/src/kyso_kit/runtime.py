"""What every service process is made of: settings, database, broker, consumer, outbox relay, HTTP.

A service's composition root builds one :class:`ServiceRuntime`, registers its handlers and routes,
and calls :meth:`ServiceRuntime.serve`. Tests build the same runtime against real servers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from datetime import datetime, timedelta
from typing import Any

from fastapi import FastAPI
from faststream.kafka import KafkaBroker

from kyso_contracts import Payload

from . import mongo, openapi, tracing
from .auth import TokenVerifier, jwks_fetcher
from .broker import EventConsumer, declare_publishers, ensure_topics, make_broker, publish_entry
from .clock import SYSTEM_CLOCK, Clock
from .http import install_conventions
from .inbox import Inbox
from .logs import configure
from .metrics import ConsumerLag, Metrics
from .outbox import LEASES, OutboxRelay
from .settings import ServiceSettings
from .store import EventFactory, MongoStore

log = logging.getLogger(__name__)

KEEP_ALIVE_SECONDS = 35
FIRST_SWEEP_SECONDS = 5.0


class ServiceRuntime:
    def __init__(
        self,
        settings: ServiceSettings,
        *,
        publishes: Iterable[type[Payload]] = (),
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.mongo = mongo.client(settings.mongodb_url)
        self.db = self.mongo[settings.mongodb_database]
        self.broker: KafkaBroker = make_broker(settings)
        self.metrics = Metrics(settings.service_name)
        self.inbox = Inbox(self.db, settings.consumer_group, clock)
        self.consumer = EventConsumer(settings, self.broker, self.inbox, self.metrics)
        self.relay = OutboxRelay(
            [],
            self._publish,
            poll_seconds=settings.outbox_poll_seconds,
            sweep_seconds=settings.outbox_sweep_seconds,
            observe=self._observe_backlog,
            registry=self.db[LEASES],
        )
        self._lag: ConsumerLag | None = None
        self.events = EventFactory(settings.source, clock)
        self.store = MongoStore(self.db, self.events, self.relay)
        self._publishes = list(publishes)
        declare_publishers(self.broker, self._publishes)
        self._startup: list[Callable[[], Awaitable[None]]] = []
        self._periodic: list[tuple[float, Callable[[], Awaitable[Any]], str, bool]] = []
        self._periodic_tasks: list[asyncio.Task[None]] = []
        self._stopping: asyncio.Future[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.every(3600, self._forget_old_event_ids, "forget-old-event-ids")
        self.every(15, self._measure_lag, "measure-consumer-lag", quiet=True)
        self.every(settings.consumer_commit_seconds, self.consumer.commit_handled, "commit-offsets", quiet=True)

    async def _publish(self, entry: dict[str, Any]) -> None:
        await publish_entry(self.broker, entry)
        self.metrics.published.inc()

    def _observe_backlog(self, collection: str, pending: list[dict[str, Any]]) -> None:
        times = [e["value"]["time"] for d in pending for e in d.get("outbox") or []]
        self.metrics.outbox_backlog.labels(collection).set(len(pending))
        oldest = min((datetime.fromisoformat(t) for t in times), default=None)
        age = (self.clock.now() - oldest).total_seconds() if oldest else 0.0
        self.metrics.outbox_oldest.labels(collection).set(max(0.0, age))

    async def _measure_lag(self) -> None:
        if self._lag is None:
            self._lag = ConsumerLag(
                self.settings.kafka_bootstrap_servers, self.settings.consumer_group, self.consumer.topics, self.metrics
            )
        await self._lag.measure()

    def on_startup(self, fn: Callable[[], Awaitable[None]]) -> Callable[[], Awaitable[None]]:
        self._startup.append(fn)
        return fn

    async def ready(self) -> dict[str, bool]:
        db_ok = await mongo.ping(self.db)
        try:
            kafka_ok = bool(await asyncio.wait_for(self.broker.ping(timeout=2.0), timeout=3.0))
        except Exception:
            kafka_ok = False
        return {"database": db_ok, "kafka": kafka_ok}

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        # The relay's lease first: every event written from now on names this process as its publisher.
        await self.relay.keep_lease()
        for fn in self._startup:
            await fn()
        await ensure_topics(
            self.settings.kafka_bootstrap_servers,
            {p.topic for p in self._publishes} | set(self.consumer.topics),
            partitions=self.settings.kafka_topic_partitions,
        )
        await self.relay.prepare()
        # The producer, the relay and its first sweep before any consumer: what a previous run left
        # goes out before this instance acts on new events (bounded, so a broker outage cannot keep
        # the service down; the relay keeps trying).
        await self.broker.connect()
        self.relay.start()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.relay.swept.wait(), timeout=FIRST_SWEEP_SECONDS)
        await self.broker.start()
        # one consumer for every topic, one in-order worker per partition the group assigns (broker.py)
        await self.consumer.start()
        self._periodic_tasks = [asyncio.create_task(self._run_periodic(*p), name=p[2]) for p in self._periodic]
        log.info("service started", extra={"consumes": self.consumer.topics})

    def stopping(self) -> None:
        """A stop was asked for (SIGTERM): stop consuming now, before the HTTP server waits for its open
        requests (long-polls answer within 30 s): its partitions go to the other instances at once (measured:
        0.2 s after SIGTERM, a long-poll still open, tests/e2e/test_scale_out.py). The relay keeps publishing
        what the remaining requests write until :meth:`stop`."""
        if self._stopping is None:
            self._stopping = asyncio.ensure_future(self._stop_consuming())

    async def _stop_consuming(self) -> None:
        try:
            # stop fetching, finish in-flight handlers, commit what was handled, leave the group
            await self.consumer.stop()
        except Exception:
            log.warning("consumer stop failed; its uncommitted events will be redelivered", exc_info=True)

    async def stop(self) -> None:
        self.stopping()
        assert self._stopping is not None
        await self._stopping
        for task in self._periodic_tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.relay.stop()
        if self._lag is not None:
            await self._lag.close()
        await self.broker.stop()
        await self.mongo.close()

    def every(self, seconds: float, job: Callable[[], Awaitable[Any]], name: str, *, quiet: bool = False) -> None:
        """Run ``job`` now and then every ``seconds`` while the service runs (housekeeping: FerretDB has
        no TTL indexes, so expiry clean-up is done in code)."""
        self._periodic.append((seconds, job, name, quiet))

    async def _run_periodic(self, seconds: float, job: Callable[[], Awaitable[Any]], name: str, quiet: bool) -> None:
        while True:
            try:
                result = await job()
                if result:
                    log.info("housekeeping", extra={"job": name, "result": result})
            except Exception:
                if quiet:
                    log.debug("periodic job failed", extra={"job": name}, exc_info=True)
                else:
                    log.exception("housekeeping job failed", extra={"job": name})
            await asyncio.sleep(seconds)

    async def _forget_old_event_ids(self) -> int:
        return await self.inbox.forget_older_than(self.clock.now() - timedelta(days=self.settings.inbox_retention_days))

    def http_app(self, title: str, description: str = "", body_limits: dict[str, int] | None = None) -> FastAPI:
        """The service's FastAPI app with the conventions; request bodies are at most 1 MiB except on the
        paths ``body_limits`` names."""

        @contextlib.asynccontextmanager
        async def lifespan(_: FastAPI) -> AsyncIterator[None]:
            await self.start()
            try:
                yield
            finally:
                await self.stop()

        app = FastAPI(title=title, description=description, version="0.1.0", lifespan=lifespan)
        install_conventions(app, self.ready, self.metrics, body_limits)
        openapi.install(app)
        return app

    def verifier(self) -> TokenVerifier:
        """Checks the access tokens registration issues (its JWKS or public key, from settings)."""
        url = self.settings.auth_jwks_url
        return TokenVerifier(self.settings.token_keys(), self.clock, fetch=jwks_fetcher(url) if url else None)

    def serve(self, app: FastAPI) -> None:
        import uvicorn

        configure(self.settings.service_name, self.settings.log_level)
        tracing.configure(self.settings.service_name, self.settings.tracing_exporter, self.settings.otlp_endpoint)
        config = uvicorn.Config(
            app,
            host=self.settings.http_host,
            port=self.settings.http_port,
            log_config=None,
            access_log=False,
            # uvicorn would believe X-Forwarded-For from loopback before our code runs; the client address
            # is decided once, in kyso_kit.client_address (TRUSTED_PROXIES).
            proxy_headers=False,
            # Longer than any client keeps an idle connection (the SDK: 20 s), so the server never
            # closes a connection a client is about to reuse; long-polls answer within 30 s.
            timeout_keep_alive=KEEP_ALIVE_SECONDS,
            # uvloop and httptools (both installed with the kit): the C event loop and HTTP parser
            loop="uvloop",
            http="httptools",
            lifespan="on",
        )
        runtime = self

        class Server(uvicorn.Server):
            """uvicorn, telling the runtime of a stop signal before it drains HTTP connections."""

            def handle_exit(self, sig: int, frame: Any) -> None:
                super().handle_exit(sig, frame)
                runtime._on_signal()

        Server(config).run()

    def _on_signal(self) -> None:
        """Called from the signal handler (the event loop's thread, between two of its steps)."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self.stopping)
