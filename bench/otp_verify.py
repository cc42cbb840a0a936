"""Benchmark: SmartOTP code verification over HTTP against the real database.

Starts Kafka + FerretDB (or uses KAFKA_BOOTSTRAP_SERVERS / MONGODB_URL) and the otp service alone as
its own process, provisions N active tokens directly in the otp database (the enrolment path is not what
is measured), then drives verifications of valid current codes — each token once, because a code is
accepted only once — and of wrong codes, with C concurrent clients. Prints throughput and latency, and
beside them the limit measured in the same run: the same number of ``GET /health`` requests from the
same clients (the bare HTTP floor of this machine and server; python driver).

    uv run python bench/otp_verify.py [--tokens 2000] [--concurrency 32] [--smoke]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
from pymongo import AsyncMongoClient

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "deploy"))

from kyso_contracts import otp_algorithms
from kyso_kit import devkeys
from kyso_kit.auth import TokenIssuer
from kyso_kit.crypto import SecretBox
from kyso_otp import domain
from stack import Stack


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def provision(mongo_url: str, db_name: str, n: int) -> list[tuple[str, str, bytes]]:
    box = SecretBox(devkeys.dev_master_key("otp-seeds"))
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(mongo_url)
    tokens = []
    docs = []
    for _ in range(n):
        token_id, account_id, seed = uuid.uuid4().hex, uuid.uuid4().hex, domain.new_seed()
        tokens.append((token_id, account_id, seed))
        docs.append(
            {
                "_id": token_id,
                "account_id": account_id,
                "status": "active",
                "device_id": "bench",
                "seed": box.seal(seed, aad=f"smartotp:{token_id}"),
                "drift": 0,
                "last_step": -1,
                "failures": 0,
                "outbox": [],
            }
        )
    for i in range(0, n, 500):
        await client[db_name]["smartotp_tokens"].insert_many(docs[i : i + 500])
    await client.close()
    return tokens


async def drive(url: str, tokens: list[tuple[str, str, bytes]], concurrency: int, valid: bool) -> dict[str, float]:
    issuer = TokenIssuer(devkeys.dev_ec_private_pem("auth"))
    bearer = {t[0]: issuer.issue(t[1]) for t in tokens}
    queue: asyncio.Queue[tuple[str, str, bytes]] = asyncio.Queue()
    for t in tokens:
        queue.put_nowait(t)
    latencies: list[float] = []
    outcomes = {"accepted": 0, "rejected": 0, "errors": 0}
    policy = domain.TokenPolicy()

    async def worker(client: httpx.AsyncClient) -> None:
        while not queue.empty():
            token_id, _account, seed = queue.get_nowait()
            step = otp_algorithms.time_step(time.time())
            code = domain.code_at(seed, step, policy)
            if not valid:
                code = f"{(int(code) + 1) % 10**6:06d}"
            t0 = time.perf_counter()
            try:
                resp = await client.post(
                    f"{url}/v1/smartotp/tokens/{token_id}/verify",
                    json={"code": code},
                    headers={"Authorization": f"Bearer {bearer[token_id]}"},
                )
            except httpx.TransportError as exc:
                outcomes["errors"] += 1
                print(f"transport error: {exc!r}", file=sys.stderr)
                continue
            latencies.append(time.perf_counter() - t0)
            if resp.status_code == 200:
                outcomes["accepted"] += 1
            elif resp.status_code == 400:
                outcomes["rejected"] += 1
            else:
                outcomes["errors"] += 1
                print(f"unexpected answer {resp.status_code}: {resp.text[:300]}", file=sys.stderr)

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:
        start = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
    return {
        "requests": len(latencies),
        **outcomes,
        "seconds": round(elapsed, 2),
        "per_second": round(len(latencies) / elapsed, 1),
        "p50_ms": round(percentile(latencies, 50) * 1000, 1),
        "p90_ms": round(percentile(latencies, 90) * 1000, 1),
        "p99_ms": round(percentile(latencies, 99) * 1000, 1),
        "max_ms": round(max(latencies) * 1000, 1),
        "mean_ms": round(statistics.fmean(latencies) * 1000, 1),
    }


async def health_floor(url: str, n: int, concurrency: int) -> dict[str, float]:
    """``n`` GETs of /health from ``concurrency`` clients: the HTTP path with no work behind it."""
    latencies: list[float] = []
    left = n

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal left
        while left > 0:
            left -= 1
            t0 = time.perf_counter()
            resp = await client.get(f"{url}/health")
            latencies.append(time.perf_counter() - t0)
            resp.raise_for_status()

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:
        start = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
    return {
        "requests": len(latencies),
        "per_second": round(len(latencies) / elapsed, 1),
        "p50_ms": round(percentile(latencies, 50) * 1000, 1),
        "p99_ms": round(percentile(latencies, 99) * 1000, 1),
    }


def drive_wrk(
    url: str, tokens: list[tuple[str, str, bytes]], concurrency: int, valid: bool, seconds: int
) -> dict[str, float]:
    issuer = TokenIssuer(devkeys.dev_ec_private_pem("auth"))
    policy = domain.TokenPolicy()
    # Codes of the next step: valid from now until the end of the step after it (at least 30 s).
    step = otp_algorithms.time_step(time.time()) + 1
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        for token_id, account_id, seed in tokens:
            code = domain.code_at(seed, step, policy)
            if not valid:
                code = f"{(int(code) + 1) % 10**6:06d}"
            f.write(f"/v1/smartotp/tokens/{token_id}/verify {issuer.issue(account_id)} {code}\n")
    threads = min(2, concurrency)
    wrk = shutil.which("wrk")
    assert wrk
    out = subprocess.run(
        [
            wrk,
            "-t",
            str(threads),
            "-c",
            str(concurrency),
            "-d",
            f"{seconds}s",
            "--latency",
            "-s",
            str(Path(__file__).with_suffix(".lua")),
            url,
            "--",
            f.name,
            str(threads),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    line = next(x for x in out.splitlines() if x.startswith("WRKJSON "))
    result: dict[str, float] = json.loads(line[len("WRKJSON ") :])
    return result


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--tokens", type=int, default=2000, help="tokens per phase (python driver)")
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--driver", choices=["wrk", "python"], default=None)
    ap.add_argument("--seconds", type=int, default=15, help="length of each phase (wrk driver)")
    ap.add_argument(
        "--smoke", action="store_true", help="40 tokens per phase, 4 clients, python driver: does it still run?"
    )
    args = ap.parse_args()
    if args.smoke:
        args.tokens, args.concurrency, args.driver = 40, 4, "python"
    driver = args.driver or ("wrk" if shutil.which("wrk") else "python")
    stack = Stack()
    try:
        # the otp service alone (Kafka + FerretDB from the environment, or started here)
        await asyncio.to_thread(stack.start, 90.0, ("otp",))
        url = stack.url("otp")
        # wrk runs for a fixed time, so it gets a generous supply of tokens (each is used once).
        n = args.tokens if driver == "python" else max(args.tokens, args.seconds * 1000)
        tokens = await provision(stack.mongodb_url, f"kyso_otp_{stack.run_id}", 2 * n + 50)
        await drive(url, tokens[:50], 8, valid=False)  # warm up connections and code paths
        phases = {"valid_codes": (tokens[50 : 50 + n], True), "wrong_codes": (tokens[50 + n :], False)}
        results: dict[str, dict[str, float]] = {}
        for name, (batch, valid) in phases.items():
            if driver == "wrk":
                results[name] = await asyncio.to_thread(drive_wrk, url, batch, args.concurrency, valid, args.seconds)
            else:
                results[name] = await drive(url, batch, args.concurrency, valid=valid)
        floor = await health_floor(url, n, args.concurrency)
        report = {
            "bench": "smartotp verify over HTTP",
            "mode": "smoke" if args.smoke else "full",
            "driver": driver,
            "concurrency": args.concurrency,
            **results,
            "health_floor": floor,
        }
        print(json.dumps(report, indent=2))
        if args.smoke:
            print("SMOKE RUN (tiny sizes: checks the benchmark runs; the figures mean nothing)")
        v = results["valid_codes"]
        print(
            f"valid codes: {v['per_second']}/s, p99 {v['p99_ms']} ms — "
            f"{100 * v['per_second'] / floor['per_second']:.0f}% of the /health floor measured in this run "
            f"({floor['per_second']}/s, python driver, {args.concurrency} clients)"
        )
        bad = sum(int(r.get("errors", 0)) + int(r.get("other", 0)) for r in results.values())
        if bad or v["accepted"] == 0 or results["wrong_codes"]["accepted"]:
            raise SystemExit(
                f"unexpected answers: {bad} errors, {v['accepted']} valid codes accepted, "
                f"{results['wrong_codes']['accepted']} wrong codes accepted"
            )
    finally:
        stack.stop()


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the finally blocks: stop what we started
    asyncio.run(main())
