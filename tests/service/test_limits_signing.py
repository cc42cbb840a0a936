"""Issue 24, the signing service: the client address the evidence records (a relying party's request,
a CSC authorisation, the subscriber's confirmation in the app) comes from the TCP peer, or — only when
that peer is a configured trusted proxy — from its ``X-Forwarded-For``. A header a client writes
itself changes nothing. Over HTTP (httpx ASGITransport, with the peer address set), with fakes."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from kyso_kit.auth import TokenIssuer, TokenVerifier
from kyso_kit.client_address import ClientAddresses
from kyso_kit.devkeys import dev_ec_private_pem, dev_ec_public_pem
from kyso_kit.errors import DomainError
from kyso_kit.http import error_response
from kyso_signing.api import csc as csc_api
from kyso_signing.api import relying_parties as rp_api
from kyso_signing.remote import csc_wire

from .test_ca import PIN, issue
from .test_remote_signing import World, digest, sms_code, world
from .test_signing_rules import ALICE

__all__ = ["world"]

PROXY = "10.20.30.40"  # inside TRUSTED_PROXIES below
CITIZEN = "198.51.100.7"  # the address a trusted proxy saw
FORGED = "192.0.2.99"  # what a client claims for itself
STRANGER = "203.0.113.5"  # a peer that is not a trusted proxy

Connect = Callable[[str], httpx.AsyncClient]


@pytest.fixture
async def connect(world: World) -> AsyncIterator[Connect]:
    """A client whose TCP peer address is the one given, to the routes as bootstrap wires them."""
    app = FastAPI()

    @app.exception_handler(DomainError)
    async def _domain(_: Any, exc: DomainError) -> Any:
        return error_response(exc)

    app.add_exception_handler(csc_wire.CscError, csc_api.csc_error_handler)
    addresses = ClientAddresses(["10.0.0.0/8"])
    verifier = TokenVerifier(dev_ec_public_pem("access-tokens"), world.s.clock)
    app.include_router(rp_api.router(world.clients, world.remote, world.s.pdfs, verifier, world.s.clock, addresses))
    app.include_router(csc_api.router(world.csc, csc_api.csc_client_dependency(world.clients), addresses))
    opened: list[httpx.AsyncClient] = []

    def make(peer: str) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=app, client=(peer, 50123))
        opened.append(httpx.AsyncClient(transport=transport, base_url="https://kyso.test"))
        return opened[-1]

    yield make
    for c in opened:
        await c.aclose()


async def rp_token(world: World) -> dict[str, str]:
    made = await world.clients.register("e-invoice", "https://rp.example.vn/hooks")
    token = await world.clients.token("client_credentials", made["client_id"], made["client_secret"])
    return {"Authorization": f"Bearer {token['access_token']}"}


def one_document(name: str) -> dict[str, Any]:
    return {"label": name, "hash": base64.b64encode(digest(name)).decode(), "hash_algorithm": "sha256"}


async def test_a_forged_forwarded_for_from_an_untrusted_peer_is_not_recorded(world: World, connect: Connect) -> None:
    await issue(world.s, "order-1")
    auth = await rp_token(world)
    body = {"user_id": ALICE.account_id, "description": "Hoá đơn", "documents": [one_document("invoice 1")]}

    direct = await connect(STRANGER).post(
        "/v1/signing-requests", json=body, headers={**auth, "X-Forwarded-For": FORGED, "Forwarded": f"for={FORGED}"}
    )
    assert direct.status_code == 202, direct.text
    doc = await world.remote.requests.get(direct.json()["request_id"])
    assert doc is not None and doc["client_address"] == STRANGER  # the peer, whatever it claims

    proxied = await connect(PROXY).post(
        "/v1/signing-requests", json=body, headers={**auth, "X-Forwarded-For": f"{FORGED}, {CITIZEN}"}
    )
    assert proxied.status_code == 202, proxied.text
    doc = await world.remote.requests.get(proxied.json()["request_id"])
    # the trusted proxy vouches for the hop it received from; what the client wrote left of it is not read
    assert doc is not None and doc["client_address"] == CITIZEN


async def test_csc_authorisations_record_the_address_behind_trusted_proxies_only(
    world: World, connect: Connect
) -> None:
    cert = await issue(world.s, "order-1")
    auth = await rp_token(world)
    body = {"credentialID": cert["_id"], "numSignatures": 1, "hashes": [base64.b64encode(digest("p1")).decode()]}
    addresses = []
    for peer in (STRANGER, PROXY):
        r = await connect(peer).post(
            "/csc/v2/credentials/authorize", json=body, headers={**auth, "X-Forwarded-For": CITIZEN}
        )
        assert r.status_code == 202, r.text
        doc = await world.remote.requests.get(r.json()["handle"])
        assert doc is not None
        addresses.append(doc["client_address"])
    assert addresses == [STRANGER, CITIZEN]


async def test_the_app_address_in_the_signing_evidence_is_not_what_the_app_claims(
    world: World, connect: Connect
) -> None:
    await issue(world.s, "order-1")
    auth = await rp_token(world)
    subscriber = TokenIssuer(dev_ec_private_pem("access-tokens"), clock=world.s.clock).issue(ALICE.account_id)
    seen = []
    for peer in (STRANGER, PROXY):
        body = {"user_id": ALICE.account_id, "description": "Hợp đồng", "documents": [one_document(f"from {peer}")]}
        made = await connect(peer).post("/v1/signing-requests", json=body, headers=auth)
        assert made.status_code == 202, made.text
        req = await world.remote.requests.get(made.json()["request_id"])
        assert req is not None
        await world.remote.when_sms_otp_verified_record(sms_code(world, req))
        confirmed = await connect(peer).post(
            f"/v1/me/signing-requests/{req['_id']}/confirmation",
            json={"pin": PIN},
            headers={"Authorization": f"Bearer {subscriber}", "X-Forwarded-For": CITIZEN, "X-Real-IP": FORGED},
        )
        assert confirmed.status_code == 200, confirmed.text
        signed = await world.remote.requests.get(req["_id"])
        assert signed is not None
        seen.append((signed["evidence"]["client_address"], signed["evidence"]["app_address"]))
    assert seen == [(STRANGER, STRANGER), (PROXY, CITIZEN)]
