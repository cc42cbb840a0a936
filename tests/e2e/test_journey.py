"""The whole journey through the four running services, and the same journey with services killed mid-way."""

from __future__ import annotations

import asyncio
import signal

from kyso_client.api import Endpoints
from kyso_client.journey import REQUIRED_EVENTS, EventWatcher, check_events, walk
from stack import Stack


async def settle(watcher: EventWatcher, correlation_id: str, seconds: float = 20.0) -> dict[str, int]:
    """Wait until every required event has arrived (then a little longer, to catch duplicates)."""
    deadline = asyncio.get_running_loop().time() + seconds
    while asyncio.get_running_loop().time() < deadline:
        counts = check_events(watcher, correlation_id)
        if all(counts.values()):
            break
        await asyncio.sleep(0.2)
    await asyncio.sleep(1.5)
    return check_events(watcher, correlation_id)


async def test_the_whole_journey_ends_active_with_each_event_published_once(
    endpoints: Endpoints, watcher: EventWatcher
) -> None:
    result = await walk(endpoints, lambda _: None)
    assert result.final_order["status"] == "active"
    assert result.final_order["certificate"]["serial_number"]
    assert [t["event"] for t in result.final_order["timeline"]] == [
        "order_placed", "paid", "contract_signed", "pending_activation", "active"
    ]  # fmt: skip
    # walk() already verified the chain to the CA and the acceptance-record signature; check events:
    counts = await settle(watcher, result.correlation_id)
    assert counts == dict.fromkeys(REQUIRED_EVENTS, 1)


async def test_services_killed_mid_journey_lose_nothing_and_do_nothing_twice(
    stack: Stack, endpoints: Endpoints, watcher: EventWatcher
) -> None:
    async def crash(step: str) -> None:
        victim = {"order_placed": "payment", "paid": "signing"}[step]
        stack.kill_service(victim, signal.SIGKILL)
        await asyncio.to_thread(stack.restart_service, victim)

    result = await walk(endpoints, lambda _: None, after=crash)
    assert result.final_order["status"] == "active"
    counts = await settle(watcher, result.correlation_id)
    assert counts == dict.fromkeys(REQUIRED_EVENTS, 1)
