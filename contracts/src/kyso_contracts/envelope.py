"""The CloudEvents 1.0 envelope every kyso event travels in (structured JSON mode).

Attribute names follow the CloudEvents spec; the extension attributes ``correlationid`` and
``causationid`` are lower-case alphanumeric as the spec requires for extensions, and
``traceparent``/``tracestate`` are the CloudEvents distributed-tracing extension (W3C trace context).
An attribute that has no value is left out of the JSON, never written as null.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

CONTENT_TYPE = "application/cloudevents+json; charset=UTF-8"
SCHEMA_BASE = "https://schemas.kyso.vn/events"


class Payload(BaseModel):
    """Base of every event payload. Subclasses declare their type, topic and key field."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    event_type: ClassVar[str]
    topic: ClassVar[str]
    key_field: ClassVar[str]

    def aggregate_id(self) -> str:
        return str(getattr(self, self.key_field))

    @classmethod
    def dataschema(cls) -> str:
        """URI of the JSON Schema of this payload (the envelope's ``dataschema``)."""
        return f"{SCHEMA_BASE}/data/{cls.event_type}.json"

    @classmethod
    def envelope_schema(cls) -> str:
        """URI of the JSON Schema of the whole CloudEvent carrying this payload."""
        return f"{SCHEMA_BASE}/envelope/{cls.event_type}.json"


P = TypeVar("P", bound=Payload)


def new_event_id() -> str:
    return str(uuid.uuid4())


def utcnow() -> datetime:
    return datetime.now(UTC)


class CloudEvent(BaseModel, Generic[P]):
    """A CloudEvents 1.0 envelope around one kyso payload."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    specversion: Literal["1.0"] = "1.0"
    id: str = Field(min_length=1, max_length=128, description="Unique per event; consumers deduplicate on it")
    source: str = Field(min_length=1, description="URI-reference of the producing service, e.g. /kyso/payment")
    type: str = Field(min_length=1, description="Versioned event type, e.g. vn.kyso.payment.confirmed.v1")
    time: datetime = Field(description="When the state change happened (UTC, RFC 3339)")
    subject: str = Field(min_length=1, description="The aggregate id; also the Kafka message key")
    datacontenttype: Literal["application/json"] = "application/json"
    dataschema: str = Field(description="URI of the JSON Schema of `data`")
    correlationid: str = Field(min_length=1, description="Id shared by every event of one user journey")
    causationid: str | None = Field(default=None, description="Id of the event or request that caused this one")
    traceparent: str | None = Field(
        default=None,
        pattern=r"^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$",
        description="W3C trace context of the operation that produced the event (CloudEvents distributed "
        "tracing extension)",
    )
    tracestate: str | None = Field(default=None, max_length=512, description="W3C tracestate, with traceparent")
    data: P

    @field_validator("time")
    @classmethod
    def _aware(cls, v: datetime) -> datetime:
        if v.tzinfo is None:
            raise ValueError("time must be timezone-aware")
        return v.astimezone(UTC)

    @property
    def key(self) -> bytes:
        return self.subject.encode()

    def to_json_dict(self) -> dict[str, Any]:
        """The structured-mode JSON object: attributes without a value are omitted (CloudEvents JSON
        format), while ``data`` keeps its own nulls."""
        return {k: v for k, v in self.model_dump(mode="json").items() if v is not None}


def wrap(
    payload: P,
    *,
    source: str,
    correlation_id: str,
    causation_id: str | None = None,
    event_id: str | None = None,
    time: datetime | None = None,
    traceparent: str | None = None,
    tracestate: str | None = None,
) -> CloudEvent[P]:
    """Put ``payload`` in an envelope whose type, subject and schema come from the payload class."""
    cls = type(payload)
    return CloudEvent[cls](  # type: ignore[valid-type]
        id=event_id or new_event_id(),
        source=source,
        type=cls.event_type,
        time=time or utcnow(),
        subject=payload.aggregate_id(),
        dataschema=cls.dataschema(),
        correlationid=correlation_id,
        causationid=causation_id,
        traceparent=traceparent,
        tracestate=tracestate,
        data=payload,
    )
