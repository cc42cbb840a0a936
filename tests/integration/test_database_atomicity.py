"""What the whole design assumes of the database: each single-document write is atomic under
concurrency (MongoDB's guarantee). Unpatched FerretDB v1 breaks it; deploy/localinfra.py patches it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from pymongo import AsyncMongoClient

from ..conftest import Servers


@pytest.fixture
async def coll(servers: Servers, unique: str) -> AsyncIterator[object]:
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(servers.mongodb_url)
    try:
        yield client[f"atomicity_{unique}"]["docs"]
    finally:
        await client.close()


async def test_compare_and_set_has_exactly_one_winner(coll: object) -> None:
    for trial in range(10):
        await coll.insert_one({"_id": trial, "v": 0})  # type: ignore[attr-defined]
        results = await asyncio.gather(
            *(
                coll.update_one({"_id": trial, "v": 0}, {"$set": {"v": i}})
                for i in range(1, 9)  # type: ignore[attr-defined]
            )
        )
        assert sum(r.modified_count for r in results) == 1


async def test_find_one_and_update_has_exactly_one_winner(coll: object) -> None:
    await coll.insert_one({"_id": "f", "state": "pending"})  # type: ignore[attr-defined]
    results = await asyncio.gather(
        *(
            coll.find_one_and_update({"_id": "f", "state": "pending"}, {"$set": {"state": f"by-{i}"}})  # type: ignore[attr-defined]
            for i in range(8)
        )
    )
    assert sum(r is not None for r in results) == 1


async def test_concurrent_increments_are_not_lost(coll: object) -> None:
    await coll.insert_one({"_id": "n", "n": 0})  # type: ignore[attr-defined]
    await asyncio.gather(*(coll.update_one({"_id": "n"}, {"$inc": {"n": 1}}) for _ in range(40)))  # type: ignore[attr-defined]
    assert (await coll.find_one({"_id": "n"}))["n"] == 40  # type: ignore[attr-defined]
