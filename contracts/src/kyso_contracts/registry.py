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


def parse_event(raw: bytes | str | dict[str, Any]) -> CloudEvent[Any]:
    """Validate ``raw`` as a kyso CloudEvent; raises ValueError (incl. ValidationError) if it is not one."""
    doc = json.loads(raw) if isinstance(raw, bytes | str) else raw
    if not isinstance(doc, dict):
        raise ValueError("event must be a JSON object")
    etype = doc.get("type")
    model = _ENVELOPES.get(etype) if isinstance(etype, str) else None
    if model is None:
        raise UnknownEventType(f"unknown event type {etype!r}")
    return model.model_validate(doc)


__all__ = ["UnknownEventType", "ValidationError", "envelope_model", "parse_event"]
