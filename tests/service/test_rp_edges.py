"""What a relying party can rely on at kyso's edges (issue 18, points 1–3), with fakes:

1. a CSC authorisation's signatures leave only through ``signHash`` / ``signPolling`` / ``signDoc``
   against a valid SAD — not from the request's status, not from its webhook — and are destroyed when
   the SAD expires or the certificate's status changes; a suspension ends every SAD for good;
2. kyso sends requests only to origins registered for the relying party, over http(s), following no
   redirect, and in production never to a loopback/link-local/private address (also as resolved);
3. the token endpoint and the protected resources speak RFC 6749 / RFC 6750 to the letter.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import httpx
import pytest
from fastapi import FastAPI

from kyso_contracts.events import SignatureCompleted
from kyso_kit.auth import TokenVerifier
from kyso_kit.devkeys import dev_ec_public_pem
from kyso_kit.errors import DomainError
from kyso_kit.http import error_response
from kyso_signing.api import csc as csc_api
from kyso_signing.api import relying_parties as rp_api
from kyso_signing.pki import signer
from kyso_signing.remote import csc_wire
from kyso_signing.remote.clients import CallbackRefused, Client, Target
from kyso_signing.remote.webhooks import Webhooks

from .test_ca import OPERATOR, PIN, issue
from .test_remote_signing import World, authorised, digest, docs, sign_hash, sms_code, verify_signature, world
from .test_signing_rules import ALICE

__all__ = ["world"]  # the fixture, shared with test_remote_signing

ES256 = signer.ECDSA_WITH["sha256"]


async def authorise_more(world: World, client: Client, cert: dict[str, Any], raw: list[bytes]) -> str:
    """Another SAD on the same credential, confirmed by the subscriber."""
    body = csc_wire.AuthorizeIn(
        credentialID=cert["_id"], numSignatures=len(raw), hashes=[base64.b64encode(r).decode() for r in raw]
    )
    handle = (await world.csc.authorize(client, body, "203.0.113.9"))["handle"]
    req = await world.remote.requests.get(handle)
    assert req is not None
    await world.remote.when_sms_otp_verified_record(sms_code(world, req))
    await world.remote.confirm(ALICE, handle, PIN)
    status, out = await world.csc.authorize_check(client, csc_wire.HandleIn(handle=handle))
    assert status == 200
    return str(out["SAD"])


async def sad_record(world: World, handle_or_sad: str) -> dict[str, Any]:
    import hashlib

    record = await world.remote.sads.get(hashlib.sha256(handle_or_sad.encode()).hexdigest())
    assert record is not None
    return dict(record)


def signatures_in(doc: Any) -> str:
    """Everything a relying party could read, flattened (to look for a signature in it)."""
    return json.dumps(doc, default=str)


# --------------------------------------------------------------------------- 1. signatures only through the SAD


async def test_csc_signatures_are_not_in_the_request_status_nor_its_webhook(world: World) -> None:
    client, cert, raw, sad = await authorised(world, n=2)
    handle = (await world.remote.requests.find_one({"client_id": client.client_id, "csc": {"$exists": True}}))["_id"]
    doc = await world.remote.of_client(client, handle)
    seen = rp_api.view(doc, for_relying_party=True)
    assert seen.status == "signed" and [s.signature for s in seen.signatures] == [None, None]
    assert "signatures_b64" not in doc and "pades_signatures_b64" not in doc  # not even stored there
    await world.deliver_outcomes()
    [(_, body, _)] = [g for g in world.receiver.got if json.loads(g[1])["request_id"] == handle]
    outcome = json.loads(body)
    assert outcome["status"] == "signed" and "signatures" not in outcome
    # nor on the topic, which outside subscribers read and Kafka keeps after the SAD has ended
    [completed] = [e for e in world.s.store.published if e.type == SignatureCompleted.event_type]
    assert completed.data.request_id == handle and completed.data.signatures_b64 == []
    # signHash gives them, and they are the subscriber's signatures over the authorised digests
    sigs = await world.csc.sign_hash(client, sign_hash(cert, sad, raw))
    for r, s in zip(raw, sigs, strict=True):
        verify_signature(cert, base64.b64decode(s), r)
        assert s not in signatures_in(seen.model_dump()) and s.encode() not in body


async def test_a_smartca_request_still_shows_its_signatures(world: World) -> None:
    cert = await issue(world.s)
    client, _ = await world.relying_party()
    req = await world.remote.submit(client, docs("a", "b"), description="x", account_id=ALICE.account_id)
    await world.remote.when_sms_otp_verified_record(sms_code(world, req))
    await world.remote.confirm(ALICE, req["_id"], PIN)
    seen = rp_api.view(await world.remote.of_client(client, req["_id"]), for_relying_party=True)
    for entry, name in zip(seen.signatures, ("a", "b"), strict=True):
        assert entry.signature is not None
        verify_signature(cert, base64.b64decode(entry.signature), digest(name))
    await world.deliver_outcomes()
    [(_, body, _)] = world.receiver.got
    assert len(json.loads(body)["signatures"]) == 2


async def test_signatures_waiting_for_their_sad_are_destroyed_when_it_expires(world: World) -> None:
    client, cert, raw, sad = await authorised(world, n=2)
    assert len((await sad_record(world, sad))["signatures"]) == 2
    world.s.clock.advance(seconds=301)
    await world.remote.expire_due()  # the every-second job
    record = await sad_record(world, sad)
    assert record["signatures"] == [] and record["pades_signatures"] == [] and record["ended"] == "expired"
    handle = record["request_id"]
    assert "sad_sealed" not in (await world.remote.requests.get(handle) or {})["csc"]
    with pytest.raises(csc_wire.CscError, match="SAD expired"):
        await world.csc.authorize_check(client, csc_wire.HandleIn(handle=handle))
    with pytest.raises(csc_wire.CscError, match="SAD expired"):
        await world.csc.sign_hash(client, sign_hash(cert, sad, raw))


@pytest.mark.parametrize("action", ["suspend", "revoke"])
async def test_a_certificate_leaving_active_destroys_every_sads_signatures(world: World, action: str) -> None:
    client, cert, _, sad = await authorised(world, n=1)
    other = [digest("another page")]
    sad2 = await authorise_more(world, client, cert, other)
    await world.s.lifecycle.operator_act(OPERATOR, cert["_id"], action, "unspecified", None)  # type: ignore[arg-type]
    for text in (sad, sad2):
        record = await sad_record(world, text)
        assert record["signatures"] == [] and record["ended"].startswith("certificate ")
        assert "live" not in record
    expected = "suspended" if action == "suspend" else "revoked"
    with pytest.raises(csc_wire.CscError, match=expected):
        await world.csc.sign_hash(client, sign_hash(cert, sad2, other))


async def test_a_sad_issued_before_a_suspension_never_signs_after_the_resumption(world: World) -> None:
    client, cert, raw, sad = await authorised(world, n=2)
    assert len(await world.csc.sign_hash(client, sign_hash(cert, sad, raw[:1]))) == 1
    await world.s.lifecycle.operator_act(OPERATOR, cert["_id"], "suspend", "unspecified", None)
    world.s.clock.advance(seconds=30)
    await world.s.lifecycle.operator_act(OPERATOR, cert["_id"], "resume", "unspecified", None)
    with pytest.raises(csc_wire.CscError, match="SAD no longer valid"):
        await world.csc.sign_hash(client, sign_hash(cert, sad, raw[1:]))  # within its 300 s
    handle = (await sad_record(world, sad))["request_id"]
    with pytest.raises(csc_wire.CscError, match="SAD no longer valid"):
        await world.csc.authorize_check(client, csc_wire.HandleIn(handle=handle))
    # a new authorisation after the resumption works
    fresh = await authorise_more(world, client, cert, [digest("after")])
    [sig] = await world.csc.sign_hash(client, sign_hash(cert, fresh, [digest("after")]))
    verify_signature(cert, base64.b64decode(sig), digest("after"))


async def test_a_sad_ends_on_a_suspension_even_if_the_process_missed_the_change(world: World) -> None:
    """The hook that ends SADs did not run (the process died right after the status change): the SAD
    is bound to the certificate's revision, so it still cannot sign, and the sweep destroys it."""
    world.s.lifecycle.after_status_change.clear()
    client, cert, raw, sad = await authorised(world, n=1)
    await world.s.lifecycle.operator_act(OPERATOR, cert["_id"], "suspend", "unspecified", None)
    await world.s.lifecycle.operator_act(OPERATOR, cert["_id"], "resume", "unspecified", None)
    assert (await sad_record(world, sad))["signatures"]  # not destroyed yet
    assert await world.remote.end_due_sads() == 1
    assert (await sad_record(world, sad))["signatures"] == []
    with pytest.raises(csc_wire.CscError, match="SAD no longer valid"):
        await world.csc.sign_hash(client, sign_hash(cert, sad, raw))


async def test_a_crash_between_the_sad_record_and_the_signed_request_leaks_nothing(world: World) -> None:
    cert = await issue(world.s)
    client, _ = await world.relying_party()
    raw = [digest("p1")]
    body = csc_wire.AuthorizeIn(credentialID=cert["_id"], numSignatures=1, hashes=[base64.b64encode(raw[0]).decode()])
    handle = (await world.csc.authorize(client, body, None))["handle"]
    req = await world.remote.requests.get(handle)
    assert req is not None
    await world.remote.when_sms_otp_verified_record(sms_code(world, req))
    real = world.remote.requests.update_and_get

    async def dies(*a: Any, **kw: Any) -> Any:
        raise ConnectionError("the process died here")

    world.remote.requests.update_and_get = dies  # type: ignore[method-assign]
    with pytest.raises(ConnectionError):
        await world.remote.confirm(ALICE, handle, PIN)
    world.remote.requests.update_and_get = real  # type: ignore[method-assign]
    # the request is still waiting: no SAD was ever given, nothing is readable
    assert await world.csc.authorize_check(client, csc_wire.HandleIn(handle=handle)) == (202, {"handle": handle})
    [orphan] = await world.remote.sads.find({})
    world.s.clock.advance(seconds=301)
    await world.remote.end_due_sads()
    assert (await world.remote.sads.get(orphan["_id"]) or {})["signatures"] == []


# --------------------------------------------------------------------------- 2. only to registered origins


async def test_registration_takes_an_allow_list_of_origins(world: World) -> None:
    made = await world.clients.register("rp", "https://RP.example.vn:443/hooks", ["https://rp.example.vn:443"])
    assert made["allowed_origins"] == ["https://rp.example.vn"]
    made = await world.clients.register("rp", "https://rp.example.vn/hooks")
    assert made["allowed_origins"] == ["https://rp.example.vn"]  # none given: the webhook's origin
    refused = [
        ("https://elsewhere.example.vn/hooks", ["https://rp.example.vn"]),
        ("ftp://rp.example.vn/hooks", []),
        ("https://user:pw@rp.example.vn/hooks", []),
        (None, ["https://rp.example.vn/path"]),
        (None, ["gopher://rp.example.vn"]),
    ]
    for url, origins in refused:
        with pytest.raises(CallbackRefused):
            await world.clients.register("rp", url, origins)


async def rp_with_origins(world: World, origins: list[str]) -> Client:
    made = await world.clients.register("portal", None, origins)
    token = await world.clients.token("client_credentials", made["client_id"], made["client_secret"])
    client = await world.clients.authenticate(token["access_token"])
    assert client is not None
    return client


async def authorised_for(
    world: World, client: Client, order: str = "order-1"
) -> tuple[dict[str, Any], list[bytes], str]:
    cert = await issue(world.s, order)
    raw = [digest(f"page of {order}")]
    return cert, raw, await authorise_more(world, client, cert, raw)


async def test_a_response_uri_off_the_allow_list_is_invalid_request_and_nothing_is_queued(world: World) -> None:
    client = await rp_with_origins(world, ["https://rp.example.vn", "https://cb.example.vn:8443"])
    cert, raw, sad = await authorised_for(world, client)
    for uri in (
        "ftp://rp.example.vn/done",
        "https://evil.example.com/done",
        "https://rp.example.vn:8080/done",  # another port: another origin
        "http://rp.example.vn/done",  # another scheme: another origin
        "http://169.254.169.254/latest/meta-data",
        "file:///etc/passwd",
        "not a url",
    ):
        body = sign_hash(cert, sad, raw, operationMode="A", response_uri=uri)
        with pytest.raises(csc_wire.CscError) as refused:
            await world.csc.sign_hash_async(client, body)
        assert (refused.value.status, refused.value.error) == (400, "invalid_request")
        assert "response_uri" in refused.value.description
    assert await world.webhooks.deliveries.find({}) == [] and await world.csc.responses.find({}) == []
    # nothing was spent: the SAD still signs, and a registered origin is notified
    out = await world.csc.sign_hash_async(
        client, sign_hash(cert, sad, raw, operationMode="A", response_uri="https://cb.example.vn:8443/csc?x=1")
    )
    [(url, note, _)] = world.receiver.got
    assert url == "https://cb.example.vn:8443/csc?x=1" and json.loads(note) == {"responseID": out["responseID"]}


def resolver(table: dict[str, list[str]]) -> Any:
    async def resolve(host: str, port: int) -> list[str]:
        if host not in table:
            raise OSError("NXDOMAIN")
        return table[host]

    return resolve


async def production_world(world: World, dns: dict[str, list[str]]) -> None:
    """The same world with the production profile's rule (and a fake DNS)."""
    world.clients.public_callbacks_only = True
    world.clients.resolve = resolver(dns)


async def test_production_refuses_private_addresses_at_registration_on_request_and_at_delivery(world: World) -> None:
    dns = {
        "rp.example.vn": ["93.184.215.14"],
        "internal.example.vn": ["10.1.2.3"],
        "mixed.example.vn": ["93.184.215.14", "127.0.0.1"],
    }
    await production_world(world, dns)
    for origin in (
        "http://127.0.0.1:8080",
        "http://localhost",
        "http://[::1]",
        "http://169.254.169.254",
        "https://10.0.0.8",
        "https://[::ffff:192.168.1.1]",
        "https://[fe80::1]",
        "http://100.64.0.1",
    ):
        with pytest.raises(CallbackRefused, match="private"):
            await world.clients.register("rp", None, [origin])
    client = await rp_with_origins(
        world, ["https://rp.example.vn", "https://internal.example.vn", "https://mixed.example.vn"]
    )
    cert, raw, sad = await authorised_for(world, client)
    for uri in ("https://internal.example.vn/cb", "https://mixed.example.vn/cb"):  # on the list, but private
        with pytest.raises(csc_wire.CscError, match="private"):
            await world.csc.sign_hash_async(client, sign_hash(cert, sad, raw, operationMode="A", response_uri=uri))
    assert await world.webhooks.deliveries.find({}) == []
    # a public host: queued, and the connection goes to the address that was checked
    world.receiver.down = True  # first attempt fails, so the delivery is tried again later
    await world.csc.sign_hash_async(
        client, sign_hash(cert, sad, raw, operationMode="A", response_uri="https://rp.example.vn/cb")
    )
    [delivery] = await world.webhooks.deliveries.find({})
    assert delivery["status"] == "pending"
    # meanwhile the name was rebound to a private address (DNS rebinding): the delivery is refused
    dns["rp.example.vn"] = ["192.168.0.10"]
    world.receiver.down = False
    world.s.clock.advance(seconds=2)
    assert await world.webhooks.deliver_due() == 0
    assert world.receiver.got == []
    refused = await world.webhooks.deliveries.get(delivery["_id"])
    assert refused is not None and refused["status"] == "refused" and "private" in refused["refused_because"]
    # resolved to public again, a new delivery connects to the checked address
    dns["rp.example.vn"] = ["93.184.215.14"]
    await world.webhooks.enqueue(client.client_id, "https://rp.example.vn/cb", "{}", "again")
    assert world.receiver.addresses == ["93.184.215.14"]


async def test_development_allows_loopback_but_only_on_registered_origins(world: World) -> None:
    client = await rp_with_origins(world, ["http://127.0.0.1:9999"])
    doc = await world.clients.clients.get(client.client_id)
    assert doc is not None
    target = await world.clients.callback_target(doc, "http://127.0.0.1:9999/x")
    assert target == Target("http://127.0.0.1:9999/x", "127.0.0.1", 9999, None)
    with pytest.raises(CallbackRefused):
        await world.clients.callback_target(doc, "http://127.0.0.1:9998/x")


class Hooks(BaseHTTPRequestHandler):
    """A relying party's server: /moved answers 307 to /elsewhere; every request is remembered."""

    seen: ClassVar[list[tuple[str, str]]] = []

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", 0)))
        Hooks.seen.append((self.path, self.headers.get("host", "")))
        if self.path == "/moved":
            self.send_response(307)
            self.send_header("location", "/elsewhere")
        else:
            self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def hooks_server() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Hooks)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    Hooks.seen.clear()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()


async def test_webhooks_follow_no_redirect_and_connect_to_the_checked_address(world: World, hooks_server: int) -> None:
    real = Webhooks(world.s.store, world.clients, world.s.clock)  # the real HTTP sender
    try:
        status = await real._http_post(
            Target(f"http://127.0.0.1:{hooks_server}/moved", "127.0.0.1", hooks_server), b"{}", {}
        )
        assert status == 307 and [p for p, _ in Hooks.seen] == ["/moved"]  # /elsewhere never asked
        # pinned: the URL names rp.example.test, the connection goes to the checked address
        pinned = Target(f"http://rp.example.test:{hooks_server}/hook", "rp.example.test", hooks_server, "127.0.0.1")
        assert await real._http_post(pinned, b"{}", {}) == 204
        assert Hooks.seen[-1] == ("/hook", f"rp.example.test:{hooks_server}")
    finally:
        await real.close()


# --------------------------------------------------------------------------- 3. OAuth 2.0 to the letter


@pytest.fixture
async def http(world: World) -> Any:
    app = FastAPI()

    @app.exception_handler(DomainError)
    async def _domain(_: Any, exc: DomainError) -> Any:
        return error_response(exc)

    app.add_exception_handler(csc_wire.CscError, csc_api.csc_error_handler)
    app.include_router(
        rp_api.router(
            world.clients, world.remote, world.s.pdfs, TokenVerifier(dev_ec_public_pem("access-tokens")), world.s.clock
        )
    )
    app.include_router(csc_api.router(world.csc, csc_api.csc_client_dependency(world.clients)))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://kyso.test") as client:
        yield client


def no_store(r: httpx.Response) -> None:
    assert r.headers["cache-control"] == "no-store" and r.headers["pragma"] == "no-cache", r.headers


async def test_the_token_endpoint_follows_rfc_6749(world: World, http: httpx.AsyncClient) -> None:
    made = await world.clients.register("rp", None)
    cid, secret = made["client_id"], made["client_secret"]
    url = "/v1/oauth2/token"
    ok = await http.post(url, data={"grant_type": "client_credentials"}, auth=(cid, secret))
    assert ok.status_code == 200 and ok.json()["token_type"] == "Bearer"
    no_store(ok)
    ok = await http.post(url, data={"grant_type": "client_credentials", "client_id": cid, "client_secret": secret})
    assert ok.status_code == 200
    no_store(ok)
    cases = [
        ({"client_id": cid, "client_secret": secret}, None, 400, "invalid_request"),  # no grant_type
        ({"grant_type": "client_credentials", "client_secret": secret}, (cid, secret), 400, "invalid_request"),
        ({"grant_type": "client_credentials", "client_id": cid, "client_secret": secret}, (cid, secret), 400,
         "invalid_request"),  # both methods, even agreeing
        ({"grant_type": "client_credentials", "client_id": "someone-else"}, (cid, secret), 400, "invalid_request"),
        ({"grant_type": "password"}, (cid, secret), 400, "unsupported_grant_type"),
        ({"grant_type": "client_credentials"}, (cid, "wrong"), 401, "invalid_client"),
    ]  # fmt: skip
    for form, basic, status, error in cases:
        r = await http.post(url, data=form, auth=basic)
        assert (r.status_code, r.json()["error"]) == (status, error), (form, r.text)
        no_store(r)
    repeated = f"grant_type=client_credentials&grant_type=client_credentials&client_id={cid}&client_secret={secret}"
    twice = await http.post(url, content=repeated, headers={"content-type": "application/x-www-form-urlencoded"})
    assert (twice.status_code, twice.json()["error"]) == (400, "invalid_request")
    wrong = await http.post(url, data={"grant_type": "client_credentials"}, auth=(cid, "wrong"))
    assert wrong.headers["www-authenticate"].startswith("Basic")


async def test_protected_resources_challenge_as_rfc_6750_says(world: World, http: httpx.AsyncClient) -> None:
    for method, path, body in (("GET", "/v1/signing-requests/" + "a" * 32, None),
                               ("POST", "/csc/v2/credentials/list", {"userID": "x"})):  # fmt: skip
        bare = await http.request(method, path, json=body)
        assert bare.status_code == 401 and bare.headers["www-authenticate"] == "Bearer"  # §3.1: no error code
        bad = await http.request(method, path, json=body, headers={"Authorization": "Bearer not-a-token"})
        assert bad.status_code == 401 and bad.headers["www-authenticate"] == 'Bearer error="invalid_token"'


async def test_csc_info_names_the_token_endpoint(world: World, http: httpx.AsyncClient) -> None:
    info = (await http.post("/csc/v2/info", json={})).json()
    assert info["oauth2"] == "https://kyso.test/v1/" and "oauth2client" in info["authType"]
    made = await world.clients.register("generic CSC client", None)
    token = await http.post(
        info["oauth2"] + "oauth2/token",
        data={"grant_type": "client_credentials"},
        auth=(made["client_id"], made["client_secret"]),
    )
    assert token.status_code == 200
    listed = await http.post(
        "/csc/v2/credentials/list",
        json={"userID": ALICE.account_id},
        headers={"Authorization": f"Bearer {token.json()['access_token']}"},
    )
    assert listed.status_code == 200 and listed.json() == {"credentialIDs": []}
