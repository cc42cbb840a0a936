"""Turn bytes from Kafka into a validated envelope of the right payload type."""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError

from .envelope import CloudEvent, Payload
from .events import BY_TYPE


class UnknownEventType(ValueError):
    pass


_ENVELOPES: dict[str, type[CloudEvent[Any]]] = {t: CloudEvent[m] for t, m in BY_TYPE.items()}  # type: ignore[valid-type]


def envelope_model(payload: type[Payload]) -> type[CloudEvent[Any]]:
    return _ENVELOPES[payload.event_type]


def parse_event(raw: bytes | str | dict[str, Any], *, strict: bool = False) -> CloudEvent[Any]:
    """Validate ``raw`` as a kyso CloudEvent; raises ValueError (incl. ValidationError) if it is not one.

    Readers are tolerant: payload fields and envelope (extension) attributes this version does not declare
    are ignored, at every level, because a newer kyso may add optional ones without a new version — a
    reader that refused them would dead-letter every event of the next release during a rolling deploy.
    Every declared field is still checked. ``strict=True`` is the writer's check: it refuses anything
    undeclared (kyso's tests use it to prove its own producers emit only what the version declares)."""
    doc = json.loads(raw) if isinstance(raw, bytes | str) else raw
    if not isinstance(doc, dict):
        raise ValueError("event must be a JSON object")
    etype = doc.get("type")
    model = _ENVELOPES.get(etype) if isinstance(etype, str) else None
    if model is None:
        raise UnknownEventType(f"unknown event type {etype!r}")
    return model.model_validate(doc, extra="forbid" if strict else "ignore")


__all__ = ["UnknownEventType", "ValidationError", "envelope_model", "parse_event"]
