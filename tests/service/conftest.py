"""Service-level tests: every use-case rule with in-memory fakes of the ports and an injected clock.
No servers; the whole layer runs in seconds."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import pytest

from kyso_contracts import CloudEvent, OrderPlaced, Payload, SubscriberIdentity, wrap
from kyso_kit.clock import FakeClock
from kyso_kit.store import EventFactory, MemoryStore


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(clock: FakeClock) -> MemoryStore:
    return MemoryStore(EventFactory("/kyso/test", clock))


def delivered(payload: Payload, clock: FakeClock, correlation: str = "journey-1") -> CloudEvent[Any]:
    """An event as another service would have published it."""
    return wrap(payload, source="/kyso/elsewhere", correlation_id=correlation, time=clock.now())


def order_placed(
    order_id: str, account_id: str, amount_vnd: int, at: datetime, *, full_name: str, years: int
) -> OrderPlaced:
    """An order as registration would have announced it."""
    return OrderPlaced(
        order_id=order_id,
        account_id=account_id,
        registration_id="reg-1",
        subscriber=SubscriberIdentity(citizen_id="001099012345", full_name=full_name, date_of_birth=date(1990, 1, 2)),
        email="a@example.vn",
        package_code=f"PERSONAL_{years}Y",
        validity_years=years,
        amount_vnd=amount_vnd,
        placed_at=at,
    )


class FakeSms:
    """The SMS port: remembers what would have been sent; can be told to fail."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, str]] = []
        self.fail = False

    async def send(self, phone: str, text: str, *, reference: str) -> None:
        if self.fail:
            raise ConnectionError("gateway down")
        self.sent.append((phone, text, reference))

    def last_code(self, reference: str) -> str:
        import re

        text = next(t for _, t, r in reversed(self.sent) if r == reference)
        match = re.search(r"\b(\d{6})\b", text)
        assert match
        return match.group(1)
