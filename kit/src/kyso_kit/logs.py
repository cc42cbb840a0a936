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


# What aiokafka logs at ERROR although it is an ordinary part of a consumer group's life, and retried or
# handled by aiokafka or the kit: (start of the message, a word that must appear in it, level it deserves).
_EXPECTED_KAFKA: tuple[tuple[str, str, int], ...] = (
    # a commit sent while the group rebalances; the kit drops it (the next owner redelivers, idempotently)
    ("OffsetCommit failed for group", "IllegalGeneration", logging.INFO),
    ("OffsetCommit failed for group", "UnknownMemberId", logging.INFO),
    ("OffsetCommit failed for group", "RebalanceInProgress", logging.INFO),
    ("OffsetCommit failed before join", "", logging.INFO),
    # the first start of a group (the broker is still creating __consumer_offsets) or a moved coordinator
    ("Group Coordinator Request failed", "CoordinatorNotAvailable", logging.WARNING),
    ("Group Coordinator Request failed", "NotCoordinator", logging.WARNING),
    ("Group Coordinator Request failed", "CoordinatorLoadInProgress", logging.WARNING),
)
# ... and what it logs at WARNING during every rebalance (hundreds of lines per restart, nothing to act on)
_REBALANCE_CHATTER = ("because it is rebalancing", "generation id is not  current", "member_id was not recognized")


class ExpectedKafkaEvents(logging.Filter):
    """Gives ordinary consumer-group events (rebalances, a group's first start) the level they deserve, so
    an operator's alerting on ERROR fires on faults only. Anything else aiokafka says keeps its level."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith("aiokafka") or record.levelno < logging.WARNING:
            return True
        text = record.getMessage()
        level = record.levelno
        for start, word, expected in _EXPECTED_KAFKA:
            if text.startswith(start) and word in text:
                level = expected
                break
        else:
            if text.startswith("Heartbeat failed") and any(c in text for c in _REBALANCE_CHATTER):
                level = logging.INFO
        if level != record.levelno:
            record.levelno, record.levelname = level, logging.getLevelName(level)
            return logging.getLogger(record.name).isEnabledFor(level)
        return True


def configure(service: str, level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter(service))
    handler.addFilter(ExpectedKafkaEvents())
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
