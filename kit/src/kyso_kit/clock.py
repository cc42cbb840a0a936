"""The one place that reads the time. Use cases take a :class:`Clock`; tests inject a :class:`FakeClock`."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """Timezone-aware UTC."""
        ...

    def time(self) -> float:
        """Unix seconds (for OTP time steps and token claims)."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def time(self) -> float:
        return time.time()


class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self, at: datetime | None = None) -> None:
        self._at = at or datetime(2026, 3, 1, 2, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self._at

    def time(self) -> float:
        return self._at.timestamp()

    def advance(self, **delta: float) -> None:
        self._at += timedelta(**delta)

    def set(self, at: datetime) -> None:
        self._at = at


SYSTEM_CLOCK = SystemClock()
