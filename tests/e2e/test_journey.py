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


async def test_each_service_exposes_prometheus_metrics_of_what_it_did(stack: Stack, endpoints: Endpoints) -> None:
    import httpx
    from prometheus_client.parser import text_string_to_metric_families

    result = await walk(endpoints, lambda _: None)
    async with httpx.AsyncClient() as http:
        families = {}
        for name in ("registration", "payment", "signing", "otp"):
            resp = await http.get(f"{stack.url(name)}/metrics")
            assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/plain")
            # parsed by the Prometheus client's own text-format parser
            families[name] = {f.name: f for f in text_string_to_metric_families(resp.text)}
    reg = families["registration"]
    routes = {s.labels["route"] for s in reg["kyso_http_request_seconds"].samples}
    assert "/v1/orders/{order_id}" in routes and not any(result.order_id in r for r in routes)  # templates only
    handled = {
        (s.labels["event_type"], s.labels["outcome"])
        for s in reg["kyso_event_handling_seconds"].samples
        if s.name.endswith("_count") and s.value > 0
    }
    assert ("vn.kyso.payment.confirmed.v1", "handled") in handled
    assert ("vn.kyso.signing.cert_activated.v1", "handled") in handled
    published = families["signing"]["kyso_outbox_published"].samples
    assert sum(s.value for s in published if s.name == "kyso_outbox_published_total") >= 3
    for name in families:
        assert "kyso_cpu_pool_queue" in families[name] and "kyso_dead_lettered" in families[name]
