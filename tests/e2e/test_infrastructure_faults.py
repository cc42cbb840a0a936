"""The journey survives the broker and the database crashing mid-way (SIGKILL, restarted on the same
data): nothing is lost, and every effect happens once. At-least-once publishing may repeat an event
after such a crash; consumers must not apply it twice."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

import localinfra
from kyso_client.api import Endpoints
from kyso_client.journey import REQUIRED_EVENTS, EventWatcher, walk
from kyso_contracts import parse_event
from stack import Stack


@pytest.fixture(scope="module")
def own_stack() -> Iterator[Stack]:
    """A stack on infrastructure this test owns (it kills it), never on shared servers."""
    s = Stack(run_dir=Path(tempfile.mkdtemp(prefix="kyso-faults-")))
    s.infra = localinfra.start(s.run_dir / "infra")
    s.kafka_bootstrap, s.mongodb_url = s.infra.kafka_bootstrap, s.infra.mongodb_url
    s.start()
    try:
        yield s
    finally:
        s.stop()


async def test_broker_and_database_crashes_mid_journey_lose_nothing_and_apply_once(own_stack: Stack) -> None:
    assert own_stack.infra is not None
    infra = own_stack.infra
    endpoints = Endpoints(*(own_stack.url(n) for n in ("registration", "payment", "signing", "otp")))

    async def crash(step: str) -> None:
        server = {"order_placed": "kafka", "paid": "ferretdb"}[step]
        await asyncio.to_thread(localinfra.crash_and_restart, infra, server, 2.0)

    result = await walk(endpoints, lambda _: None, after=crash)
    assert result.final_order["status"] == "active"
    assert [t["event"] for t in result.final_order["timeline"]] == [
        "order_placed", "paid", "contract_signed", "pending_activation", "active"
    ]  # fmt: skip

    watcher = EventWatcher(own_stack.kafka_bootstrap)
    await watcher.start()
    try:
        ids: dict[str, set[str]] = {t: set() for t in REQUIRED_EVENTS}
        deadline = asyncio.get_running_loop().time() + 30
        while asyncio.get_running_loop().time() < deadline:
            for _, key, doc in watcher.keyed(result.correlation_id):
                event = parse_event(doc)
                assert key is not None and key.decode() == event.subject
                if event.type in ids:
                    ids[event.type].add(event.id)
            if all(ids.values()):
                break
            await asyncio.sleep(0.5)
    finally:
        await watcher.stop()
    # Each required event exists, as one event (one id) — copies of it, if any, are the same event.
    assert {t: len(v) for t, v in ids.items()} == dict.fromkeys(REQUIRED_EVENTS, 1)
