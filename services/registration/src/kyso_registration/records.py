"""Registration's typed records (:mod:`kyso_kit.records`): the fields its decisions read and change.
Fields a record type does not name are kept as stored."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from kyso_kit.records import Record, Utc

from .domain import OrderStatus


class Order(Record):
    """A certificate order as the status view changes it (``orders``)."""

    account_id: str
    status: OrderStatus
    placed_at: Utc
    timeline: list[dict[str, Any]] = Field(default_factory=list)
    certificate: dict[str, Any] = Field(default_factory=dict)
