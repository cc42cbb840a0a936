"""Structured JSON logs on stdout, carrying the correlation id of the request or event at hand."""

from __future__ import annotations

import contextvars
import json
import logging
import sys
import uuid
from datetime import UTC, datetime
from typing import Any

correlation_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("correlation_id", default=None)


def mask_phone(phone: str) -> str:
    """What may be shown or logged of a phone number: the country code and the last three digits."""
    return phone[:4] + "*" * (len(phone) - 7) + phone[-3:]


def current_correlation_id() -> str:
    """The journey's correlation id (from the HTTP request or the event being handled), or a new one."""
    return correlation_id.get() or str(uuid.uuid4())


_RESERVED = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "service": self.service,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        cid = correlation_id.get()
        if cid:
            doc["correlation_id"] = cid
        for k, v in record.__dict__.items():
            if k not in _RESERVED and not k.startswith("_"):
                doc[k] = v
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return json.dumps(doc, default=str, ensure_ascii=False)


def configure(service: str, level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Libraries that install their own (coloured, plain-text) handlers log through ours instead.
    for name in ("faststream", "faststream.access", "uvicorn", "uvicorn.error"):
        lib = logging.getLogger(name)
        lib.handlers[:] = []
        lib.propagate = True
    # fontTools writes ~36 INFO lines for each font it subsets (twice per PDF drawn up): 5 % of signing's CPU.
    for noisy in ("aiokafka", "pymongo", "uvicorn.access", "faststream.access", "fontTools"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
