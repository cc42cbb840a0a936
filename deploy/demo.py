"""Bring the whole kyso system up on this machine and walk one citizen's journey end to end.

Starts a real Kafka broker and FerretDB (provisioned and cached on first use), the four services as
separate processes, walks the journey over HTTP while printing every step and every event, checks
the result, and stops everything it started.
"""

from __future__ import annotations

import asyncio
import sys
import time

from kyso_client.api import Endpoints, KysoApi
from kyso_client.journey import EventWatcher, JourneyResult, check_events, new_correlation_id, walk
from kyso_client.relying_party import revocation_status
from stack import Stack


def say(line: str) -> None:
    print(line, flush=True)


async def lifecycle(endpoints: Endpoints, result: JourneyResult, cid: str) -> None:
    """After the journey: a relying party checks the certificate, the subscriber suspends it with an SMS
    code bound to the request, and the relying party sees the change."""
    status = await revocation_status(result.certificate_pem, result.ca_pem)
    say(f"7. a relying party asks OCSP: {status.ocsp}; CRL #{status.crl_number} lists it: {status.crl_lists_it}")
    api = KysoApi(endpoints, correlation_id=cid)
    try:
        await api.login(result.phone, "Ky-so an toan 2025!")
        request = await api.request_lifecycle_change(result.certificate_id, "suspend")
        await api.confirm_lifecycle_change(request, result.account_id, result.phone)
        say(f"8. the subscriber suspends it (fresh password + SMS code bound to sha256 {request['sha256'][:16]}…)")
        order = await api.order_reaching(result.order_id, "suspended", timeout=20)
        status = await revocation_status(result.certificate_pem, result.ca_pem)
        say(
            f"   order '{order['status_vi']}'; OCSP: {status.ocsp} ({status.reason}); "
            f"CRL #{status.crl_number} lists it: {status.crl_lists_it}"
        )
    finally:
        await api.aclose()


async def run(stack: Stack) -> int:
    endpoints = Endpoints(*(stack.url(n) for n in ("registration", "payment", "signing", "otp")))
    cid = new_correlation_id()
    watcher = EventWatcher(stack.kafka_bootstrap, printer=say, correlation_id=cid)
    await watcher.start()
    try:
        result = await walk(endpoints, say, correlation_id=cid)
        await lifecycle(endpoints, result, cid)
        await asyncio.sleep(2.0)  # let the last events arrive in the printout
        counts = check_events(watcher, result.correlation_id)
    finally:
        await watcher.stop()
    say("\nevents of this journey (each must be published exactly once):")
    for etype, n in counts.items():
        say(f"  {'ok ' if n == 1 else 'BAD'} {n}× {etype}")
    return 0 if all(n == 1 for n in counts.values()) else 1


def main() -> int:
    t0 = time.monotonic()
    say("starting Kafka, FerretDB and the four services (first run provisions them: a few minutes)…")
    stack = Stack()
    try:
        stack.start()
        say(f"up in {time.monotonic() - t0:.1f}s — " + ", ".join(f"{n} {s.url}" for n, s in stack.services.items()))
        say(f"logs: {stack.run_dir}\n")
        return asyncio.run(run(stack))
    finally:
        stack.stop()


if __name__ == "__main__":
    sys.exit(main())
