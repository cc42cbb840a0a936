"""Payment notifications (VNPay IPN) over HTTP against the real database and broker.

    uv run python bench/ipn.py [--quick | --smoke] [--out bench/results]

Starts Kafka + FerretDB, the four services and the sandbox gateway; one account places N orders and
opens each checkout; then, at 16 concurrent clients:

- **distinct**: one signed IPN per payment (each settles a payment: a guarded write + PaymentConfirmed
  in the outbox), IPNs per second and p50/p99;
- **duplicates**: the same IPN 1,000 times (an already-settled payment: one read, answered 02);
- **/health**: the same HTTP path with no work behind it — the floor this machine and server allow,
  measured in the same run.

The IPNs are made as the gateway makes them (``sandbox_gateway.Gateway.paid`` + ``ipn_of``, the
development secret). Writes ``ipn.md`` / ``ipn.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "deploy"))
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "tests"))

from harness import CpuMeter, bench_main, ms, pct, running_stack, sized, subscriber  # noqa: E402

from kyso_client.api import Endpoints, KysoApi, eventually  # noqa: E402
from kyso_payment import sandbox_gateway  # noqa: E402
from kyso_payment.settings import PaymentSettings  # noqa: E402

CONCURRENCY = 16


async def hammer(url: str, params: list[dict[str, str] | None], meter: CpuMeter) -> dict[str, Any]:
    latencies: list[float] = []
    codes: dict[str, int] = {}
    queue = list(params)

    async def worker(client: httpx.AsyncClient) -> None:
        while queue:
            p = queue.pop()
            t0 = time.perf_counter()
            r = await client.get(url, params=p) if p is not None else await client.get(url)
            latencies.append(time.perf_counter() - t0)
            code = r.json().get("RspCode", str(r.status_code)) if p is not None else str(r.status_code)
            codes[code] = codes.get(code, 0) + 1

    before = meter.read()
    started = time.perf_counter()
    async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=CONCURRENCY)) as client:
        await asyncio.gather(*(worker(client) for _ in range(CONCURRENCY)))
    elapsed = time.perf_counter() - started
    cpu = CpuMeter.used(before, meter.read())
    return {
        "requests": len(latencies),
        "per_second": round(len(latencies) / elapsed, 1),
        "p50_ms": ms(pct(latencies, 50)),
        "p99_ms": ms(pct(latencies, 99)),
        "codes": codes,
        "server_cpu_ms_per_request": round(sum(cpu.values()) * 1000 / max(1, len(latencies)), 2),
        "cpu_ms_per_request_by_process": {
            k: round(v * 1000 / max(1, len(latencies)), 2) for k, v in cpu.items() if v > 0
        },
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    orders = sized(args, 400, 100, 6)
    with running_stack() as stack:
        endpoints = Endpoints(*(stack.url(n) for n in ("registration", "payment", "signing", "otp")))
        settings = PaymentSettings(KYSO_PROFILE="development")  # type: ignore[call-arg]  # the stack's secret
        assert settings.vnpay_hash_secret
        gateway = sandbox_gateway.Gateway(settings.vnpay_tmn_code, settings.vnpay_hash_secret, "")
        # One order waiting for payment per subscriber and package: each subscriber opens one per package.
        packages = ("PERSONAL_1Y", "PERSONAL_2Y", "PERSONAL_3Y")
        sem = asyncio.Semaphore(8)

        async def buyer() -> KysoApi:
            async with sem:
                return await subscriber(endpoints)

        buyers: list[KysoApi] = await asyncio.gather(*(buyer() for _ in range(-(-orders // len(packages)))))
        urls: list[str] = []

        async def one(api: KysoApi, package: str) -> None:
            async with sem:
                order = await api.place_order(package)
                pay = await eventually(lambda: api.payment_for_order(order["order_id"], wait=20), timeout=60)
                urls.append((await api.checkout(pay["payment_id"]))["payment_url"])

        plan = [(b, p) for b in buyers for p in packages][:orders]
        await asyncio.gather(*(one(b, p) for b, p in plan))
        for b in buyers:
            await b.aclose()
        ipns = [gateway.ipn_of(gateway.paid(u)) for u in urls]
        meter = CpuMeter.of(stack)
        ipn_url = f"{stack.url('payment')}/v1/payments/vnpay/ipn"
        floor = await hammer(f"{stack.url('payment')}/health", [None] * (orders * 2), meter)
        distinct = await hammer(ipn_url, list(ipns), meter)
        duplicates = await hammer(ipn_url, [ipns[0]] * sized(args, 1000, 1000, 50), meter)
        return {
            "orders": orders,
            "concurrency": CONCURRENCY,
            "health_floor": floor,
            "distinct": distinct,
            "duplicates": duplicates,
        }


def report(r: dict[str, Any]) -> str:
    lines = [
        f"# IPN handling — {r['orders']} payments, {r['concurrency']} concurrent clients, 2 cores",
        "",
        "| load | requests | per second | p50 ms | p99 ms | server CPU ms/request | answers |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for name, key in (
        ("/health (floor)", "health_floor"),
        ("distinct IPNs", "distinct"),
        ("duplicate IPN", "duplicates"),
    ):
        s = r[key]
        lines.append(
            f"| {name} | {s['requests']} | {s['per_second']:,} | {s['p50_ms']} | {s['p99_ms']} | "
            f"{s['server_cpu_ms_per_request']} | {s['codes']} |"
        )
    lines += ["", "Server CPU per request by process (ms):", ""]
    for key in ("distinct", "duplicates"):
        lines.append(f"- {key}: {r[key]['cpu_ms_per_request_by_process']}")
    d, f = r["distinct"], r["health_floor"]
    lines += ["", f"Distinct IPNs run at {100 * d['per_second'] / f['per_second']:.0f}% of the /health floor."]
    return "\n".join(lines)


if __name__ == "__main__":
    bench_main(__doc__ or "", run, report, "ipn", "100 payments instead of 400")
