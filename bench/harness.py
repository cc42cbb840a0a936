"""What every benchmark in bench/ shares: the command line (``--quick``, ``--smoke``, ``--out``), the stack
it runs against, percentiles, server CPU from /proc, and the in-process PKI world of the PDF benchmarks.

Kept apart from perf.py so that perf.py and pades.py no longer import each other.

``--smoke`` runs the same code paths with tiny sizes and a few seconds of measurement, so that
``make test`` (tests/e2e/test_bench_smoke.py) notices a benchmark that no longer runs; its figures say
nothing about performance. When ``KYSO_BENCH_STACK`` holds a running stack's ``Stack.describe()`` (the
smoke test sets it), benchmarks that need the four services use that stack instead of starting their own.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
for _p in (ROOT / "deploy", ROOT / "bench", ROOT / "tests"):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

from kyso_client.api import Endpoints, KysoApi  # noqa: E402
from kyso_client.journey import open_account  # noqa: E402
from stack import SERVICES, Stack  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")
CORES = os.cpu_count() or 1
PASSWORD = "Ky-so an toan 2025!"
POLICY = "2.25.250634348.1.1"
STACK_ENV = "KYSO_BENCH_STACK"  # KYSO_*: Stack.service_env keeps it from the services' environment


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


def mode(args: argparse.Namespace) -> str:
    """``full``, ``quick`` or ``smoke``."""
    return "smoke" if getattr(args, "smoke", False) else "quick" if getattr(args, "quick", False) else "full"


def sized(args: argparse.Namespace, full: Any, quick: Any, smoke: Any) -> Any:
    """The size of a run: ``full``, ``quick`` or ``smoke`` as asked on the command line."""
    return {"full": full, "quick": quick, "smoke": smoke}[mode(args)]


@contextmanager
def running_stack(env: dict[str, str] | None = None) -> Iterator[Stack]:
    """The four services: the stack named by ``KYSO_BENCH_STACK`` (used, left running) or one started
    here (Kafka + FerretDB from KAFKA_BOOTSTRAP_SERVERS / MONGODB_URL or started too) and stopped after.
    ``env``: settings for the services this starts (ignored when attaching: say so when it matters)."""
    shared = os.environ.get(STACK_ENV)
    if shared:
        print(f"using the running stack of {STACK_ENV}", file=sys.stderr)
        yield Stack.attach(shared)
        return
    saved = {k: os.environ.get(k) for k in env or {}}
    os.environ.update(env or {})
    stack = Stack()
    try:
        stack.start()
        yield stack
    finally:
        stack.stop()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


class CpuMeter:
    """CPU seconds used by the server processes (services, FerretDB, Kafka) between two readings."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids

    @classmethod
    def of(cls, stack: Stack) -> CpuMeter:
        """The four services of ``stack`` and, when it started them, FerretDB and Kafka."""
        pids = {name: stack.services[name].pid for name in SERVICES if name in stack.services}
        if stack.infra is not None:
            pids |= {"ferretdb": stack.infra.ferretdb_pid, "kafka": stack.infra.kafka_pid}
        return cls(pids)

    def read(self) -> dict[str, float]:
        out = {}
        for name, pid in self.pids.items():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                out[name] = (int(fields[11]) + int(fields[12])) / TICKS
            except (OSError, IndexError, ValueError):
                out[name] = 0.0
        return out

    @staticmethod
    def used(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
        return {k: round(after[k] - before[k], 3) for k in before}


async def subscriber(endpoints: Endpoints) -> KysoApi:
    """A citizen with an account (the steps before ordering), signed in."""
    api = KysoApi(endpoints)
    await open_account(api, "Burst Test", PASSWORD)
    return api


def timed(fn: Callable[[], Any], n: int) -> dict[str, float]:
    fn()  # warm
    samples = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t)
    samples.sort()
    return {
        "n": n,
        "p50_ms": round(statistics.median(samples) * 1000, 2),
        "p95_ms": round(samples[int(0.95 * (n - 1))] * 1000, 2),
        "per_second": round(n / sum(samples), 1),
    }


@dataclass(frozen=True)
class World:
    """A fresh CA hierarchy, provider seal and TSA made with the service's own code (no database)."""

    now: datetime
    urls: Any
    ca_key: Any
    ca: Any
    seal_key: Any
    seal: Any
    tsa: Any
    trust: Any


def world() -> World:
    from cryptography.hazmat.primitives.serialization import Encoding

    from kyso_kit.clock import SystemClock
    from kyso_signing import patches
    from kyso_signing.documents import ltv
    from kyso_signing.pki import crl, profiles
    from kyso_signing.pki import keys as pki
    from kyso_signing.pki.tsa import TimestampAuthority

    patches.apply()  # as the service does at start-up
    now = datetime.now(UTC)
    urls = profiles.Urls("http://127.0.0.1:8003")
    rk = pki.new_key(pki.KeyAlgorithm.ECDSA_P384)
    root = profiles.root_ca(rk, profiles.ca_name("Root", "kyso bench"), now)
    ck = pki.new_key()
    ca = profiles.issuing_ca(ck.public_key(), profiles.ca_name("Issuing", "kyso bench"), rk, root, urls, POLICY, now)
    sk, tk = pki.new_key(), pki.new_key()
    seal = profiles.provider_seal(
        sk.public_key(), "kyso bench", "0000000000", ck, ca, urls, POLICY, now, timedelta(days=90)
    )
    tsa_cert = profiles.timestamp_authority(tk.public_key(), ck, ca, urls, POLICY, now, timedelta(days=90))
    tsa = TimestampAuthority(POLICY, SystemClock())
    tsa.use(tk, tsa_cert)
    crls = tuple(
        crl.build_crl([], 1, issuer, key, now - timedelta(minutes=1), timedelta(hours=24)).public_bytes(Encoding.DER)
        for issuer, key in ((ca, ck), (root, rk))
    )
    return World(now, urls, ck, ca, sk, seal, tsa, ltv.Trust(root, ca, crls))


def parser(doc: str, quick_help: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=doc.splitlines()[0])
    size = p.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help=quick_help)
    size.add_argument(
        "--smoke", action="store_true", help="seconds, tiny sizes: does it still run? (make test); figures meaningless"
    )
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    return p


def bench_main(
    doc: str,
    run_: Callable[[argparse.Namespace], Coroutine[Any, Any, dict[str, Any]]],
    report_: Callable[[dict[str, Any]], str],
    name: str,
    quick_help: str,
) -> None:
    """The command line every smaller benchmark shares: ``--quick``, ``--smoke``, ``--out``; <name>.md and .json."""
    args = parser(doc, quick_help).parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    results = asyncio.run(run_(args))
    results["mode"] = mode(args)
    text = report_(results)
    if args.smoke:
        text = "SMOKE RUN (tiny sizes: checks the benchmark runs; the figures mean nothing)\n\n" + text
    (args.out / f"{name}.md").write_text(text + "\n")
    (args.out / f"{name}.json").write_text(json.dumps(results, indent=2) + "\n")
    print(text)
