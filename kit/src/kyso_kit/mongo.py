"""MongoDB access through PyMongo's native async API.

We use ``pymongo.AsyncMongoClient``, not Motor: MongoDB deprecated Motor in favour of PyMongo's
async API (Motor reaches end of life in 2026), and the async client talks to the server directly
instead of wrapping the sync driver in threads.
"""

from __future__ import annotations

from typing import Any

from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase


def client(url: str) -> AsyncMongoClient[dict[str, Any]]:
    return AsyncMongoClient(url, tz_aware=True, serverSelectionTimeoutMS=5000, connectTimeoutMS=3000)


async def ping(db: AsyncDatabase[Any]) -> bool:
    try:
        await db.command("ping")
    except Exception:
        return False
    return True
