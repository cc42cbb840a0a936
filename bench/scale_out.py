"""Benchmark: events handled per second by one instance of a service, then by two, in the same run.

Starts Kafka + FerretDB of its own and the otp service through
``deploy/cluster.py``: first one instance, then a second one beside it (same consumer group, static
membership). Each phase publishes N ``AccountCreated`` events on distinct accounts (so distinct keys,
spread over every partition) as fast as the producer goes, and times them from the first send until
the group's committed offsets reach the end of every partition: what the otp service handles (inbox
check, the account upsert guarded by the event id, inbox record) at its full rate. Prints both rates,
their ratio, the partition count and the CPU count (the second instance can only add what the machine
has to spare: Kafka, FerretDB and both instances share its cores).

    uv run python bench/scale_out.py [--events 3000] [--smoke] [--out bench/results]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "deploy"))

import localinfra
from cluster import Cluster
from kyso_client import vneid
from kyso_contracts import AccountCreated, topics, wrap
from stack import Stack

ROOT = Path(__file__).resolve().parent.parent
GROUP = "kyso-otp"


async def handled_rate(bootstrap: str, n: int, timeout: float = 300.0) -> tuple[float, float]:
    """Publish ``n`` events, wait until the otp group has committed past all of them: (events/s, seconds)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=5)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    reader = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    await producer.start()
    await admin.start()
    await reader.start()
    try:
        parts = [TopicPartition(topics.REGISTRATION, p) for p in await producer.partitions_for(topics.REGISTRATION)]
        events = []
        for _ in range(n):
            account = uuid.uuid4().hex
            payload = AccountCreated(
                account_id=account, registration_id=uuid.uuid4().hex, citizen_id=vneid.random_citizen_id(),
                phone=vneid.random_phone(), email="bench@example.vn", created_at=datetime.now(UTC),
            )  # fmt: skip
            events.append((account, wrap(payload, source="/kyso/bench", correlation_id=account).model_dump_json()))
        started = time.monotonic()
        sent = [await producer.send(topics.REGISTRATION, doc.encode(), key=key.encode()) for key, doc in events]
        await asyncio.gather(*sent)
        end = await reader.end_offsets(parts)
        deadline = started + timeout
        while time.monotonic() < deadline:
            committed = await admin.list_consumer_group_offsets(GROUP, partitions=parts)
            if all(tp in committed and committed[tp].offset >= end[tp] for tp in parts):
                elapsed = time.monotonic() - started
                return n / elapsed, elapsed
            await asyncio.sleep(0.05)
        raise TimeoutError(f"{n} events not handled within {timeout} s")
    finally:
        await reader.stop()
        await admin.close()
        await producer.stop()


async def group_members(bootstrap: str) -> int:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        described = await admin.describe_consumer_groups([GROUP])
        _error, _group, state, _kind, _protocol, members, *_ = described[0].groups[0]
        return len(members) if state == "Stable" else 0
    finally:
        await admin.close()


async def settle(bootstrap: str, members: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while await group_members(bootstrap) != members:
        if time.monotonic() > deadline:
            raise TimeoutError(f"the otp group did not settle with {members} members")
        await asyncio.sleep(0.5)


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) a process has used so far, from /proc (Linux)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measured(cluster: Cluster, n: int) -> tuple[float, float, dict[str, float]]:
    """One phase: (events/s, seconds, cores each process used meanwhile)."""
    pids = {label: sp.pid for (_, i), sp in cluster.procs.items() for label in [f"otp-{i}"] if sp.proc}
    infra = cluster.stack.infra
    if infra is not None:
        pids.update(kafka=infra.kafka_pid, ferretdb=infra.ferretdb_pid)
    pids["bench"] = os.getpid()
    before = {k: cpu_seconds(p) for k, p in pids.items()}
    rate, elapsed = asyncio.run(handled_rate(cluster.stack.kafka_bootstrap, n))
    return rate, elapsed, {k: (cpu_seconds(p) - before[k]) / elapsed for k, p in pids.items()}


def cores(used: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.2f}" for k, v in used.items()) + f"; total {sum(used.values()):.2f}"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--events", type=int, default=3000, help="events per phase")
    ap.add_argument(
        "--smoke", action="store_true", help="seconds, tiny sizes: does it still run? (make test); figures meaningless"
    )
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = ap.parse_args(argv)
    n = 100 if args.smoke else args.events
    # Kafka and FerretDB of its own, always: another stack's otp on a shared broker would be a third member
    # of the kyso-otp group (and topics created before this kyso may have fewer partitions).
    stack = Stack(run_dir=Path(tempfile.mkdtemp(prefix="kyso-bench-scale-")))
    stack.infra = localinfra.start(stack.run_dir / "infra")
    stack.kafka_bootstrap, stack.mongodb_url = stack.infra.kafka_bootstrap, stack.infra.mongodb_url
    cluster = Cluster(instances=2, stack=stack, only=("otp",))
    cluster.start(running=1)
    try:
        bootstrap = stack.kafka_bootstrap
        asyncio.run(settle(bootstrap, 1))
        asyncio.run(handled_rate(bootstrap, min(n, 200)))  # warm-up: connections, caches
        one, one_s, one_cpu = measured(cluster, n)
        sp = cluster.start_instance("otp", 1)
        stack.wait_ready(sp)
        asyncio.run(settle(bootstrap, 2))
        asyncio.run(handled_rate(bootstrap, min(n, 200)))
        two, two_s, two_cpu = measured(cluster, n)
        partitions = asyncio.run(_partitions(bootstrap))
    finally:
        cluster.stop()
    lines = [
        f"scale-out (otp, AccountCreated, {n} events per phase, {partitions} partitions, {os.cpu_count()} CPUs)",
        f"  one instance:  {one:8.1f} events/s  ({one_s:.2f} s)",
        f"  two instances: {two:8.1f} events/s  ({two_s:.2f} s)  x{two / one:.2f}",
        f"  cores used, one instance:  {cores(one_cpu)}",
        f"  cores used, two instances: {cores(two_cpu)}",
    ]
    text = "\n".join(lines)
    if args.smoke:
        text = "SMOKE RUN (tiny sizes: checks the benchmark runs; the figures mean nothing)\n\n" + text
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "scale_out.md").write_text(text + "\n")
    results = {
        "mode": "smoke" if args.smoke else "full", "events_per_phase": n, "partitions": partitions,
        "one_instance": {"events_per_second": one, "seconds": one_s, "cores": one_cpu},
        "two_instances": {"events_per_second": two, "seconds": two_s, "cores": two_cpu},
    }  # fmt: skip
    (args.out / "scale_out.json").write_text(json.dumps(results, indent=2) + "\n")
    print(text)


async def _partitions(bootstrap: str) -> int:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        return len(await producer.partitions_for(topics.REGISTRATION))
    finally:
        await producer.stop()


if __name__ == "__main__":
    main()
