"""Time is timezone-aware UTC inside and shown in Asia/Ho_Chi_Minh. The time itself comes from
:mod:`kyso_kit.clock`."""

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

VN = ZoneInfo("Asia/Ho_Chi_Minh")


def as_utc(dt: datetime) -> datetime:
    """Mongo returns aware datetimes with tz_aware=True; normalise anything else defensively."""
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def local(dt: datetime) -> str:
    return as_utc(dt).astimezone(VN).isoformat()
