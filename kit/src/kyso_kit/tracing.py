"""Distributed tracing: W3C trace context from an HTTP request, through the outbox and Kafka, into the
next service's handler and the events it causes (OpenTelemetry).

An HTTP request continues the caller's ``traceparent`` header (or starts a trace) — FastAPI's native
OpenTelemetry instrumentation makes that server span from the global tracer provider set here; every event
written while a span is current carries that span's context in the CloudEvents distributed-tracing
extension attributes ``traceparent``/``tracestate``; a consumer continues the trace of the event it
handles. Spans are exported to the console or over OTLP/HTTP, chosen by ``TRACING_EXPORTER``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from opentelemetry import context, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON, ParentBased
from opentelemetry.trace import SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

_propagator = TraceContextTextMapPropagator()
tracer = trace.get_tracer("kyso")


def configure(service: str, exporter: str, otlp_endpoint: str | None = None) -> TracerProvider:
    """Install the process's tracer provider (``exporter``: none, console or otlp)."""
    # Without an exporter nothing is recorded (no span objects to build per request), but every
    # span still has a trace context, so traceparent flows through requests and events all the same.
    sampler = ALWAYS_OFF if exporter == "none" else ParentBased(ALWAYS_ON)
    provider = TracerProvider(resource=Resource.create({"service.name": f"kyso-{service}"}), sampler=sampler)
    chosen: SpanExporter | None = None
    if exporter == "console":
        chosen = ConsoleSpanExporter()
    elif exporter == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        chosen = OTLPSpanExporter(endpoint=otlp_endpoint) if otlp_endpoint else OTLPSpanExporter()
    if chosen is not None:
        provider.add_span_processor(BatchSpanProcessor(chosen))
    trace.set_tracer_provider(provider)
    return provider


def current_trace_context() -> dict[str, str]:
    """The current span's context as W3C ``traceparent`` (and ``tracestate``), for an event."""
    carrier: dict[str, str] = {}
    _propagator.inject(carrier)
    return carrier


@contextlib.contextmanager
def continued(name: str, carrier: dict[str, Any], kind: SpanKind, **attributes: Any) -> Iterator[trace.Span]:
    """A span that continues the trace in ``carrier`` (a ``traceparent`` from a request or an event)."""
    parent = _propagator.extract({k: v for k, v in carrier.items() if isinstance(v, str)})
    token = context.attach(parent)
    try:
        with tracer.start_as_current_span(name, kind=kind, attributes=attributes) as span:
            yield span
    finally:
        context.detach(token)
