"""The address a request came from: the one place a service learns it.

Limits keyed on an address are only as good as the address. A client can put anything in
``X-Forwarded-For`` or ``Forwarded`` (RFC 7239), so those headers are believed only when the
connection itself comes from a proxy the operator listed in ``TRUSTED_PROXIES``, and only as far
as that proxy and the trusted proxies before it vouch for them: the chain is read from the right
(the hop nearest to us), trusted hops are skipped, and the first hop that is not a trusted proxy
is the client. Whatever a client wrote further to the left is never read. Only the header the
proxies are configured to write (``TRUSTED_PROXY_HEADER``) is read; a proxy that writes
``X-Forwarded-For`` passes a client's own ``Forwarded`` header through untouched, so reading both
would let the client choose.

Everything else in the request (``X-Real-IP``, ``True-Client-IP``…) is ignored. With no trusted
proxy configured (the default) the address is the TCP peer, whatever the headers say.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable, Sequence
from typing import Literal

from starlette.requests import Request
from starlette.types import Scope

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
ProxyHeader = Literal["x-forwarded-for", "forwarded"]

UNKNOWN = "unknown"


def parse_networks(cidrs: Iterable[str]) -> tuple[Network, ...]:
    """``10.0.0.0/8``, ``192.0.2.7`` (a single host) or ``2001:db8::/32``; anything else is an error, so a
    typo in the setting stops the service at start rather than trusting nothing (or everything)."""
    return tuple(ipaddress.ip_network(c.strip(), strict=False) for c in cidrs if c.strip())


def _address(value: str) -> Address | None:
    """An IP address from a header value or a socket peer: ``192.0.2.1``, ``192.0.2.1:4711``,
    ``[2001:db8::1]:4711``, ``2001:db8::1``; IPv4-mapped IPv6 becomes IPv4. None for anything else
    (``unknown``, an RFC 7239 obfuscated ``_identifier``, garbage)."""
    v = value.strip().strip('"').strip()
    if v.startswith("["):
        end = v.find("]")
        if end < 0:
            return None
        v = v[1:end]
    elif v.count(":") == 1:  # IPv4 with a port
        v = v.split(":", 1)[0]
    try:
        ip = ipaddress.ip_address(v.split("%", 1)[0])  # a zone id never names a different host
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def _forwarded_for(values: Sequence[str]) -> list[str]:
    """The ``for=`` of each element of RFC 7239 ``Forwarded`` header lines, left to right; an element
    without ``for=`` stands for a hop that did not say, and is kept as ``unknown``."""
    hops: list[str] = []
    for line in values:
        for element in _split(line, ","):
            found = UNKNOWN
            for pair in _split(element, ";"):
                name, _, value = pair.partition("=")
                if name.strip().lower() == "for":
                    found = value.strip().strip('"')
            hops.append(found)
    return hops


def _split(text: str, sep: str) -> list[str]:
    """Split on ``sep`` outside quoted strings (RFC 7230 quoted-string, as RFC 7239 uses)."""
    parts: list[str] = []
    current: list[str] = []
    quoted = escaped = False
    for ch in text:
        if escaped:
            escaped = False
        elif ch == "\\" and quoted:
            escaped = True
        elif ch == '"':
            quoted = not quoted
        elif ch == sep and not quoted:
            parts.append("".join(current))
            current = []
            continue
        current.append(ch)
    parts.append("".join(current))
    return [p for p in (p.strip() for p in parts) if p]


class ClientAddresses:
    """Finds the client address of a request behind the configured trusted proxies."""

    def __init__(self, trusted_proxies: Iterable[str] = (), header: ProxyHeader = "x-forwarded-for") -> None:
        self.trusted = parse_networks(trusted_proxies)
        self.header = header

    def is_trusted(self, address: Address | None) -> bool:
        return address is not None and any(address in n for n in self.trusted)

    def of_scope(self, scope: Scope) -> str:
        peer_raw = (scope.get("client") or (UNKNOWN, 0))[0]
        peer = _address(str(peer_raw))
        if not self.is_trusted(peer):
            # The peer is the client: what it says about anyone before it is not evidence.
            return str(peer) if peer is not None else str(peer_raw)
        name = self.header.encode()
        values = [v.decode("latin-1") for k, v in scope.get("headers") or [] if k.lower() == name]
        hops = _forwarded_for(values) if self.header == "forwarded" else [h for v in values for h in _split(v, ",")]
        nearest = peer
        for hop in reversed(hops):
            ip = _address(hop)
            if ip is None:
                # A hop that does not name an address: nothing to its left can be traced, so the
                # client is as far as we can see: the trusted proxy that received from it.
                return str(nearest)
            if not self.is_trusted(ip):
                return str(ip)
            nearest = ip
        return str(nearest)  # every hop is a trusted proxy: the request started inside

    def of(self, request: Request) -> str:
        return self.of_scope(request.scope)

    def dependency(self) -> Callable[[Request], str]:
        """A FastAPI dependency giving the client address of the request."""

        def client_address(request: Request) -> str:
            return self.of(request)

        return client_address


def limit_key(address: str) -> str:
    """What an address-wide limit counts on: the address, but an IPv6 address by its /64 (one
    subscriber line or host gets a whole /64, so counting single IPv6 addresses bounds nothing)."""
    ip = _address(address)
    if isinstance(ip, ipaddress.IPv6Address):
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip) if ip is not None else address
