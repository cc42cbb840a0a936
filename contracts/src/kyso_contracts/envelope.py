"""The CloudEvents 1.0 envelope every kyso event travels in (structured JSON mode).

Attribute names follow the CloudEvents spec; the extension attributes ``correlationid`` and
``causationid`` are lower-case alphanumeric as the spec requires for extensions, and
``traceparent``/``tracestate`` are the CloudEvents distributed-tracing extension (W3C trace context).
An attribute that has no value is left out of the JSON, never written as null.

Writers strict, readers tolerant. Building a payload or an envelope in Python refuses any field the model
does not declare, so kyso's own producers can never emit a field outside the event type's version. Reading
(:func:`kyso_contracts.parse_event`) ignores what it does not know: a newer kyso adds optional payload
fields and CloudEvents extension attributes (top-level attributes in structured mode, ``ce_`` headers in
binary mode) without changing the version, and a reader built against this version must keep working
during a rolling deploy. The published JSON Schemas therefore allow additional properties at every level.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

CONTENT_TYPE = "application/cloudevents+json; charset=UTF-8"
SCHEMA_BASE = "https://schemas.kyso.vn/events"

READERS_IGNORE_UNKNOWN = (
    "Readers must ignore what they do not know: kyso adds optional payload fields and CloudEvents extension "
    "attributes (top-level attributes in structured mode) without changing the event type's version, so every "
    "object here allows additional properties. kyso's own producers never emit a field outside this version."
)

DELIVERED_MORE_THAN_ONCE = (
    "An event may be delivered more than once in rare cases (a crash between publishing it and recording "
    "that it was published), so consumers deduplicate on the CloudEvents `id`."
)


def _tolerant_schema(schema: dict[str, Any]) -> None:
    """The published schema is the *reader's* contract: unknown properties are allowed (and ignored), even
    though the Python model refuses them when kyso writes an event (see the module docstring)."""
    schema["additionalProperties"] = True


class Payload(BaseModel):
    """Base of every event payload. Subclasses declare their type, topic and key field.

    ``extra="forbid"`` is the writer's rule (kyso never emits an undeclared field); readers validate with
    ``extra="ignore"`` (:func:`kyso_contracts.parse_event`), so a field added by a newer kyso is ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_extra=_tolerant_schema)

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
    """A CloudEvents 1.0 envelope around one kyso payload.

    Strict when kyso builds one (no undeclared attribute), tolerant when read: an extension attribute this
    version does not define is ignored by :func:`kyso_contracts.parse_event`."""

    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_extra=_tolerant_schema)

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
