"""Scale-out, run as an operator would: two instances of every service, each service behind one address
(a round-robin proxy), one instance of each service restarted in turn (SIGTERM, started again) and one
killed (SIGKILL) while citizens walk their journeys concurrently. Every journey completes, each event
is published once (one id, one copy), and no instance logs an ERROR — rebalances are ordinary life.

A load balancer takes an instance out of rotation before it is stopped or killed (``drain``): requests
in the hands of a crashed process are lost to their clients whatever the back end does; what is tested
here is everything behind them — partitions, offsets, outboxes, leases."""

from __future__ import annotations

import asyncio
import json
import signal
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

import localinfra
from cluster import Cluster
from kyso_client.api import Endpoints
from kyso_client.journey import REQUIRED_EVENTS, EventWatcher, JourneyResult, check_events, walk
from stack import SERVICES, Stack

IN_FLIGHT = 3  # journeys walking at any time while instances come and go


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    """On infrastructure of its own: its topics are created by this kyso (12 partitions), and it is
    not shared with the other tests' consumer groups."""
    stack = Stack(run_dir=Path(tempfile.mkdtemp(prefix="kyso-scale-")))
    stack.infra = localinfra.start(stack.run_dir / "infra")
    stack.kafka_bootstrap, stack.mongodb_url = stack.infra.kafka_bootstrap, stack.infra.mongodb_url
    c = Cluster(instances=2, stack=stack)
    try:
        c.start()
        yield c
    finally:
        c.stop()


def error_lines(logs: dict[str, str]) -> list[str]:
    """Lines at ERROR or above, and anything not JSON (a traceback printed around the log handler)."""
    bad = []
    for name, text in logs.items():
        for line in text.splitlines():
            try:
                level = json.loads(line).get("level")
            except ValueError:
                bad.append(f"{name}: {line}")
                continue
            if level in ("ERROR", "CRITICAL"):
                bad.append(f"{name}: {line}")
    return bad


async def test_restarts_and_a_kill_during_concurrent_journeys_lose_nothing_double_nothing_log_no_error(
    cluster: Cluster,
) -> None:
    endpoints = Endpoints(*(cluster.url(n) for n in SERVICES))
    watcher = EventWatcher(cluster.stack.kafka_bootstrap)
    await watcher.start()
    results: list[JourneyResult] = []
    failures: list[BaseException] = []
    chaos_done = asyncio.Event()
    timings: list[str] = []

    async def journeys(lane: int) -> None:
        while not chaos_done.is_set():
            try:
                results.append(await walk(endpoints, lambda _: None))
            except Exception as exc:  # kept to report every failed journey, not only the first
                failures.append(exc)

    async def chaos() -> None:
        try:
            await asyncio.sleep(3)
            for name in SERVICES:  # one instance of each service in turn: SIGTERM, start again
                stopped, ready = await asyncio.to_thread(cluster.restart_instance, name, 0)
                timings.append(f"{name}-0 restart: stopped in {stopped:.1f} s, ready in {ready:.1f} s")
                await asyncio.sleep(2)
            # one killed (SIGKILL) with its partitions, in-flight events and outbox, then started again
            stopped, ready = await asyncio.to_thread(cluster.restart_instance, "signing", 1, signal.SIGKILL)
            timings.append(f"signing-1 SIGKILL: ready again in {ready:.1f} s")
            await asyncio.sleep(3)
        finally:
            chaos_done.set()

    started = time.monotonic()
    try:
        await asyncio.gather(chaos(), *(journeys(i) for i in range(IN_FLIGHT)))
        elapsed = time.monotonic() - started
        assert not failures, failures
        assert len(results) >= IN_FLIGHT
        for r in results:
            assert r.final_order["status"] == "active"
            assert [t["event"] for t in r.final_order["timeline"]] == [
                "order_placed", "paid", "contract_signed", "pending_activation", "active"
            ]  # fmt: skip
        # each business fact once: every required event of every journey, published as exactly one record
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            counts = {r.correlation_id: check_events(watcher, r.correlation_id) for r in results}
            if all(all(c.values()) for c in counts.values()):
                break
            await asyncio.sleep(0.5)
        await asyncio.sleep(2)  # a late copy would show now
        for r in results:
            assert check_events(watcher, r.correlation_id) == dict.fromkeys(REQUIRED_EVENTS, 1), r.correlation_id
        # no copies of any event id on any topic (not only the journeys' required ones)
        copies = Counter(doc["id"] for _, _, doc in watcher.keyed_all() if "id" in doc)
        assert [i for i, n in copies.items() if n > 1] == []
    finally:
        await watcher.stop()

    logs = cluster.log_text()
    assert error_lines(logs) == []
    # every instance served requests through the round-robin, and none fell out of its group for good
    for name, front in cluster.fronts.items():
        assert all(n > 0 for n in front.served.values()), (name, front.served)
    rebalances = {n: t.count('"partitions assigned"') for n, t in logs.items()}
    print(f"\n{len(results)} journeys in {elapsed:.0f} s; " + "; ".join(timings) + f"; assignments: {rebalances}")


async def test_a_stopping_instance_hands_its_partitions_over_before_it_waits_for_its_open_requests(
    cluster: Cluster,
) -> None:
    """SIGTERM while a long-poll is open on the instance: its partitions move to the other instance within
    seconds, while the long-poll is still being answered (uvicorn waits for it before the app's shutdown)."""
    import httpx
    from aiokafka.admin import AIOKafkaAdminClient

    from kyso_client import vneid

    sp = cluster.procs[("registration", 1)]
    assert sp.proc is not None
    async with httpx.AsyncClient(base_url=sp.url, timeout=30) as http:
        ident = vneid.identity(vneid.random_citizen_id(), "Lê Văn Tám", "1988-08-08", province="Hà Nội")
        reg = (await http.post("/v1/vneid/registrations", json={"assertion": vneid.sign(ident)})).json()
        # a phone that is never verified: the long-poll is answered after its full 8 s
        poll = asyncio.create_task(
            http.get(f"/v1/registrations/{reg['registration_id']}", params={"phone": vneid.random_phone(), "wait": 8})
        )
        await asyncio.sleep(0.5)
        admin = AIOKafkaAdminClient(bootstrap_servers=cluster.stack.kafka_bootstrap)
        await admin.start()
        try:
            signalled = time.monotonic()
            sp.proc.send_signal(signal.SIGTERM)
            while True:
                _, _, state, _, _, members, *_ = (await admin.describe_consumer_groups(["kyso-registration"]))[
                    0
                ].groups[0]
                if state == "Stable" and len(members) == 1:
                    break
                assert time.monotonic() - signalled < 6, "partitions not handed over"
                await asyncio.sleep(0.2)
            handed_over = time.monotonic() - signalled
            assert not poll.done()  # the open request is still being served
            assert (await poll).status_code == 200
        finally:
            await admin.close()
    await asyncio.to_thread(sp.proc.wait, 30)
    print(f"\npartitions handed over {handed_over:.1f} s after SIGTERM, with a long-poll still open")
    ready = await asyncio.to_thread(cluster.restart_instance, "registration", 1)  # leave the cluster whole
    assert ready
