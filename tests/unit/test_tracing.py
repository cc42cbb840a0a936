"""W3C trace context flows from an HTTP request into the events it causes, and from an event into the
handler that consumes it and the events that handler causes."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from kyso_contracts import CloudEvent, OtpMethodChanged, OtpMethodLocked, parse_event
from kyso_kit.broker import EventConsumer
from kyso_kit.clock import FakeClock
from kyso_kit.metrics import Metrics
from kyso_kit.settings import ServiceSettings
from kyso_kit.store import EventFactory

CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER = f"00-{CALLER_TRACE}-00f067aa0ba902b7-01"


@pytest.fixture(scope="module")
def spans() -> InMemorySpanExporter:
    exporter = InMemorySpanExporter()
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return exporter


def changed() -> OtpMethodChanged:
    return OtpMethodChanged(account_id="a1", method="smartotp", previous="sms", changed_at=datetime.now(UTC))


def test_an_event_written_during_a_request_continues_the_callers_trace(spans: InMemorySpanExporter) -> None:
    factory = EventFactory("/kyso/test", FakeClock())
    app = FastAPI()  # FastAPI's native OpenTelemetry instrumentation makes the server span
    made: list[CloudEvent[Any]] = []

    @app.post("/things/{thing_id}")
    async def make(thing_id: str) -> dict[str, str]:
        made.append(factory(changed()))
        return {"id": thing_id}

    assert TestClient(app).post("/things/t1", headers={"traceparent": CALLER}).status_code == 200
    [event] = made
    assert event.traceparent is not None
    version, trace_id, span_id, _flags = event.traceparent.split("-")
    assert version == "00" and trace_id == CALLER_TRACE and span_id != "00f067aa0ba902b7"
    request_spans = {
        s.context.span_id: s for s in spans.get_finished_spans() if s.context.trace_id == int(CALLER_TRACE, 16)
    }
    [server] = [s for s in request_spans.values() if s.kind == trace.SpanKind.SERVER]
    assert server.parent is not None and format(server.parent.span_id, "016x") == "00f067aa0ba902b7"
    current = request_spans[int(span_id, 16)]  # the event names a span of this very request…
    while current is not server:  # …inside the server span
        assert current.parent is not None
        current = request_spans[current.parent.span_id]
    assert "traceparent" in event.to_json_dict() and "causationid" not in event.to_json_dict()


class FakeInbox:
    async def seen(self, event_id: str) -> bool:
        return False

    async def remember(self, event_id: str, event_type: str) -> None:
        return None


async def test_a_handler_continues_the_trace_of_the_event_it_handles(spans: InMemorySpanExporter) -> None:
    factory = EventFactory("/kyso/test", FakeClock())
    settings = ServiceSettings(service_name="tracetest")  # type: ignore[call-arg]
    consumer = EventConsumer(settings, None, FakeInbox(), Metrics("tracetest"))  # type: ignore[arg-type]
    caused: list[CloudEvent[Any]] = []

    @consumer.on(OtpMethodChanged)
    async def handle(event: CloudEvent[Any]) -> None:
        locked = OtpMethodLocked(account_id="a1", method="sms", reason="test", locked_at=datetime.now(UTC))
        caused.append(factory(locked, causation_id=event.id))

    incoming = factory(changed())
    assert incoming.traceparent is None  # no span here: nothing to continue
    incoming = parse_event({**incoming.to_json_dict(), "traceparent": CALLER})
    message = SimpleNamespace(raw_message=None, body=incoming.model_dump_json().encode())
    await consumer.handle(message)  # type: ignore[arg-type]
    [event] = caused
    assert event.traceparent and event.traceparent.split("-")[1] == CALLER_TRACE
    assert event.causationid == incoming.id
    handled = next(s for s in spans.get_finished_spans() if s.name == f"handle {incoming.type}")
    assert handled.kind == trace.SpanKind.CONSUMER and handled.parent is not None
    assert format(handled.parent.span_id, "016x") == "00f067aa0ba902b7"


class CountingInbox(FakeInbox):
    def __init__(self) -> None:
        self.calls = 0

    async def seen(self, event_id: str) -> bool:
        self.calls += 1
        return False

    async def remember(self, event_id: str, event_type: str) -> None:
        self.calls += 1


async def test_events_a_handler_does_not_want_cost_no_inbox_round_trip() -> None:
    factory = EventFactory("/kyso/test", FakeClock())
    settings = ServiceSettings(service_name="wantstest")  # type: ignore[call-arg]
    inbox = CountingInbox()
    consumer = EventConsumer(settings, None, inbox, Metrics("wantstest"))  # type: ignore[arg-type]
    handled: list[str] = []

    @consumer.on(OtpMethodChanged, wants=lambda p: p.method == "smartotp")
    async def handle(event: CloudEvent[Any]) -> None:
        handled.append(event.data.method)

    for method in ("sms", "smartotp"):
        event = factory(changed().model_copy(update={"method": method}))
        await consumer.handle(SimpleNamespace(raw_message=None, body=event.model_dump_json().encode()))  # type: ignore[arg-type]
    assert handled == ["smartotp"] and inbox.calls == 2  # the unwanted one: not even a duplicate check
