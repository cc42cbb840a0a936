"""The client address behind trusted proxies (kyso_kit.client_address) and the sliding windows that
count per address (kyso_kit.limits): a forwarding header counts only when a trusted proxy sent it."""

from __future__ import annotations

import random
from typing import Any

import httpx
import pytest
from fastapi import Depends, FastAPI
from uvicorn.middleware.proxy_headers import _TrustedHosts

from kyso_kit.client_address import ClientAddresses, limit_key
from kyso_kit.clock import FakeClock
from kyso_kit.limits import SlidingWindow
from kyso_kit.store import EventFactory, MemoryStore
from kyso_otp.settings import OtpSettings

PROXY = "10.1.2.3"


def scope(peer: str, *headers: tuple[str, str]) -> dict[str, Any]:
    return {
        "type": "http",
        "client": (peer, 50000),
        "headers": [(k.lower().encode(), v.encode("latin-1")) for k, v in headers],
    }


def test_with_no_trusted_proxy_the_peer_is_the_client_whatever_it_writes() -> None:
    addresses = ClientAddresses()
    forged = scope("198.51.100.7", ("X-Forwarded-For", "203.0.113.1"), ("Forwarded", "for=203.0.113.2"))
    assert addresses.of_scope(forged) == "198.51.100.7"
    assert addresses.of_scope(scope("198.51.100.7", ("X-Real-IP", "203.0.113.3"))) == "198.51.100.7"


def test_a_forwarding_header_from_an_untrusted_peer_changes_nothing() -> None:
    addresses = ClientAddresses(["10.0.0.0/8"])
    assert addresses.of_scope(scope("198.51.100.7", ("X-Forwarded-For", "10.9.9.9"))) == "198.51.100.7"


def test_a_trusted_proxy_is_believed_as_far_as_trusted_hops_vouch() -> None:
    addresses = ClientAddresses(["10.0.0.0/8", "192.0.2.1"])
    assert addresses.of_scope(scope(PROXY, ("X-Forwarded-For", "198.51.100.7"))) == "198.51.100.7"
    # what the client wrote itself (leftmost) is never read: the first untrusted hop from the right wins
    chain = ("X-Forwarded-For", "203.0.113.66, 198.51.100.7, 192.0.2.1")
    assert addresses.of_scope(scope(PROXY, chain)) == "198.51.100.7"
    # several header lines are one list (RFC 9110 §5.3)
    lines = scope(PROXY, ("X-Forwarded-For", "203.0.113.66"), ("X-Forwarded-For", "198.51.100.8, 10.0.0.9"))
    assert addresses.of_scope(lines) == "198.51.100.8"
    assert addresses.of_scope(scope(PROXY)) == PROXY  # a trusted proxy's own request
    assert addresses.of_scope(scope(PROXY, ("X-Forwarded-For", "10.0.0.5"))) == "10.0.0.5"  # all inside
    assert addresses.of_scope(scope(PROXY, ("X-Forwarded-For", "garbage, 10.0.0.5"))) == "10.0.0.5"
    assert addresses.of_scope(scope(PROXY, ("X-Forwarded-For", "198.51.100.7:4711"))) == "198.51.100.7"


def test_rfc_7239_forwarded_when_the_proxies_write_it_and_only_then() -> None:
    addresses = ClientAddresses(["10.0.0.0/8"], header="forwarded")
    # RFC 7239 §4 and §7.4 examples: quoted IPv6 with a port, several elements and pairs
    ipv6 = scope(PROXY, ("Forwarded", 'for="[2001:db8:cafe::17]:4711";proto=https'))
    assert addresses.of_scope(ipv6) == "2001:db8:cafe::17"
    chain = scope(PROXY, ("Forwarded", "for=192.0.2.43, for=198.51.100.17;by=10.0.0.1, for=10.0.0.4"))
    assert addresses.of_scope(chain) == "198.51.100.17"
    hidden = scope(PROXY, ("Forwarded", "for=_hidden, for=10.0.0.4"))  # an obfuscated hop: as far as we see
    assert addresses.of_scope(hidden) == "10.0.0.4"
    # X-Forwarded-For is not what these proxies write: a client's own copy passes through unread
    assert addresses.of_scope(scope(PROXY, ("X-Forwarded-For", "203.0.113.9"))) == PROXY
    xff = ClientAddresses(["10.0.0.0/8"])
    assert xff.of_scope(scope(PROXY, ("Forwarded", "for=203.0.113.9"))) == PROXY


def test_the_chain_is_read_as_uvicorns_proxy_middleware_reads_it() -> None:
    """An independent implementation of the same rule (uvicorn's, for X-Forwarded-For) agrees on
    random chains of trusted and untrusted hops."""
    rng = random.Random(24)
    trusted = ["10.0.0.1", "10.0.0.2", "192.0.2.1"]
    addresses, uvicorn = ClientAddresses(trusted), _TrustedHosts(trusted)
    pool = [*trusted, "198.51.100.7", "203.0.113.9", "2001:db8::5"]
    for _ in range(500):
        hops = [rng.choice(pool) for _ in range(rng.randint(1, 5))]
        header = ", ".join(hops)
        assert (
            addresses.of_scope(scope("10.0.0.1", ("X-Forwarded-For", header)))
            == (uvicorn.get_trusted_client_address(header)[0])
        ), header


def test_trusted_proxies_are_a_setting_and_a_typo_stops_the_service() -> None:
    settings = OtpSettings(TRUSTED_PROXIES="10.0.0.0/8, 2001:db8::/64", TRUSTED_PROXY_HEADER="forwarded")  # type: ignore[call-arg]
    assert settings.trusted_proxies == ["10.0.0.0/8", "2001:db8::/64"]
    assert settings.client_addresses().header == "forwarded"
    assert OtpSettings().trusted_proxies == []  # default: trust no header at all
    with pytest.raises(ValueError):
        OtpSettings(TRUSTED_PROXIES="10.0.0.300/8")  # type: ignore[call-arg]


async def test_over_http_only_the_trusted_proxys_header_counts() -> None:
    app = FastAPI()
    address = OtpSettings(TRUSTED_PROXIES=PROXY).client_addresses().dependency()  # type: ignore[call-arg]

    @app.get("/whoami")
    async def whoami(client: str = Depends(address)) -> dict[str, str]:
        return {"client": client}

    async def ask(peer: str, forwarded_for: str) -> str:
        transport = httpx.ASGITransport(app=app, client=(peer, 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://kyso") as http:
            r = await http.get("/whoami", headers={"X-Forwarded-For": forwarded_for})
            return str(r.json()["client"])

    assert await ask("198.51.100.7", "203.0.113.1") == "198.51.100.7"  # forged by a client: ignored
    assert await ask(PROXY, "203.0.113.1") == "203.0.113.1"  # written by the trusted proxy: honoured


def test_an_ipv6_host_is_counted_by_its_64() -> None:
    assert limit_key("2001:db8:1:2::1") == limit_key("2001:db8:1:2:ffff::9") == "2001:db8:1:2::/64"
    assert limit_key("198.51.100.7") == "198.51.100.7"
    assert limit_key("::ffff:198.51.100.7") == "198.51.100.7"


async def test_a_sliding_window_does_not_reopen_on_the_clock_hour() -> None:
    clock = FakeClock()  # 02:00
    window = SlidingWindow(MemoryStore(EventFactory("/kyso/test", clock)).collection("limit_events"), clock)
    clock.advance(minutes=59)
    for _ in range(3):
        assert await window.hit("s", "k", 3, 3600) is None
    assert await window.hit("s", "k", 3, 3600) == 3600
    clock.advance(minutes=2)  # 03:01: a fixed clock-hour window would allow three more now
    assert await window.hit("s", "k", 3, 3600) == 3600 - 120
    assert await window.count("s", "k", 3600) == 3  # refused hits are not counted
    clock.advance(minutes=58)  # 03:59: the three are an hour old
    assert await window.hit("s", "k", 3, 3600) is None
    assert await window.hit_all(("s", "k", 3, 3600), ("t", "k", 0, 3600)) is not None
    assert await window.count("s", "k", 3600) == 1  # all or none: the refusal by "t" gave "s" back
