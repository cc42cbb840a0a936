"""Remote signing with fakes: a relying party asks, the subscriber confirms with a code bound to the
documents and the signing PIN, each digest is signed once; the CSC SAD; webhooks; the evidence chain."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
from collections.abc import Callable
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from kyso_contracts import (
    OtpPurpose,
    SignatureCompleted,
    SignatureExpired,
    SignatureRejected,
    SignatureRequested,
    SmartOtpTransactionVerified,
    SmsOtpVerified,
)
from kyso_kit.auth import Principal
from kyso_kit.errors import Conflict, Forbidden, Invalid, NotFound, Rejected
from kyso_kit.routing import deliver
from kyso_signing.flows.acceptance import ACCEPTANCE_CLIENT
from kyso_signing.handlers import HANDLERS
from kyso_signing.pki import keys as pki
from kyso_signing.pki import signer
from kyso_signing.remote import csc_wire, evidence, webhooks
from kyso_signing.remote.clients import Client, OAuthError
from kyso_signing.remote.domain import Document

from .conftest import delivered
from .test_ca import OPERATOR, PIN, cert_of, issue
from .test_signing_rules import ALICE, Signing

MALLORY = Principal("acct-mallory")


class World:
    """Signing's core with a relying party's side: the same objects bootstrap wires (``Signing.core``)."""

    def __init__(self, signing: Signing) -> None:
        self.s = signing
        self.clients, self.remote, self.receiver = signing.clients, signing.remote, signing.receiver
        self.webhooks, self.audit, self.csc = signing.webhooks, signing.audit, signing.csc

    async def start(self) -> None:
        """Nothing more to start: ``Signing.start`` ran the core's start-up."""

    async def relying_party(self, name: str = "e-invoice") -> tuple[Client, dict[str, Any]]:
        created = await self.clients.register(name, "https://rp.example.vn/hooks")
        token = await self.clients.token("client_credentials", created["client_id"], created["client_secret"])
        client = await self.clients.authenticate(token["access_token"])
        assert client is not None
        return client, created

    async def deliver_outcomes(self) -> None:
        """What the consumer does with the service's own signing-request outcomes: the production routing."""
        outcomes = {SignatureCompleted.event_type, SignatureRejected.event_type, SignatureExpired.event_type}
        for e in list(self.s.store.published):
            if e.type in outcomes:
                assert await deliver(HANDLERS, self.s.core, e)


@pytest.fixture
async def world(store: Any, clock: Any) -> World:
    s = Signing(store, clock)
    await s.start()
    w = World(s)
    await w.start()
    return w


def rp_only(events: list[Any]) -> list[Any]:
    """Leave out kyso's own request for the acceptance record, made at every activation."""
    return [e for e in events if e.data.client_id != ACCEPTANCE_CLIENT.client_id]


def rp_only_docs(docs: list[Any]) -> list[Any]:
    return [d for d in docs if d["client_id"] != ACCEPTANCE_CLIENT.client_id]


def digest(text: str, algorithm: str = "sha256") -> bytes:
    return hashlib.new(algorithm, text.encode()).digest()


def docs(*names: str, algorithm: str = "sha256", urlsafe: bool = False) -> list[Document]:
    enc = base64.urlsafe_b64encode if urlsafe else base64.b64encode
    return [Document(n, enc(digest(n, algorithm)).decode().rstrip("=" if urlsafe else ""), algorithm) for n in names]


def sms_code(w: World, request: dict[str, Any], *, account: str = ALICE.account_id, binding: str | None = None) -> Any:
    return delivered(
        SmsOtpVerified(
            challenge_id=f"ch-{request['_id'][:6]}-{account[-3:]}",
            purpose=OtpPurpose.SIGNATURE_CONFIRMATION,
            subject=request["_id"],
            account_id=account,
            phone="+84912345678",
            binding_sha256=binding or request["documents_digest"],
            verified_at=w.s.clock.now(),
        ),
        w.s.clock,
    )


def verify_signature(cert_doc: dict[str, Any], signature: bytes, d: bytes, algorithm: str = "sha256") -> None:
    public = pki.public_key_of(cert_of(cert_doc))
    h = signer.HASHES[algorithm]
    if isinstance(public, rsa.RSAPublicKey):
        public.verify(signature, d, padding.PSS(padding.MGF1(h.algorithm()), h.size), Prehashed(h.algorithm()))
    else:
        assert isinstance(public, ec.EllipticCurvePublicKey)
        public.verify(signature, d, ec.ECDSA(Prehashed(h.algorithm())))


async def test_a_batch_is_signed_once_after_a_bound_code_and_the_pin(world: World) -> None:
    cert = await issue(world.s)
    client, created = await world.relying_party()
    names = ["hoa-don-001.xml", "hoa-don-002.xml", "hop-dong.pdf"]
    req = await world.remote.submit(
        client, docs(*names), description="Ký hóa đơn tháng 11", account_id=ALICE.account_id
    )
    assert req["status"] == "waiting_for_user_confirm" and req["certificate_id"] == cert["_id"]
    [requested] = rp_only(world.s.store.of_type(SignatureRequested))
    assert [d.label for d in requested.data.documents] == names
    assert [r["_id"] for r in rp_only_docs(await world.remote.pending(ALICE))] == [req["_id"]]
    with pytest.raises(Conflict, match="one-time code"):
        await world.remote.confirm(ALICE, req["_id"], PIN)  # no code yet
    # codes for something else change nothing
    await world.remote.when_sms_otp_verified_record(sms_code(world, req, binding="f" * 64))
    await world.remote.when_sms_otp_verified_record(sms_code(world, req, account=MALLORY.account_id))
    with pytest.raises(Conflict, match="one-time code"):
        await world.remote.confirm(ALICE, req["_id"], PIN)
    await world.remote.when_sms_otp_verified_record(sms_code(world, req))
    with pytest.raises(Forbidden):
        await world.remote.confirm(OPERATOR, req["_id"], PIN)  # sole control: never an operator
    with pytest.raises(Forbidden):
        await world.remote.confirm(MALLORY, req["_id"], PIN)
    with pytest.raises(Rejected, match="4 tries left"):
        await world.remote.confirm(ALICE, req["_id"], "975310")
    done = await world.remote.confirm(ALICE, req["_id"], PIN, app_address="10.0.0.7")
    assert done["status"] == "signed"
    for name, sig in zip(names, done["signatures_b64"], strict=True):
        verify_signature(cert, base64.b64decode(sig), digest(name))
    with pytest.raises(Conflict):
        await world.remote.confirm(ALICE, req["_id"], PIN)  # signed once
    [completed] = rp_only(world.s.store.of_type(SignatureCompleted))
    assert completed.data.signatures_b64 == done["signatures_b64"] and completed.data.confirmed_with == "sms"
    assert "key" not in json.dumps(completed.data.model_dump(mode="json")).replace("key_", "")
    # the relying party reads its own request only
    other, _ = await world.relying_party("someone else")
    with pytest.raises(NotFound):
        await world.remote.of_client(other, req["_id"])
    assert (await world.remote.of_client(client, req["_id"]))["signatures_b64"] == done["signatures_b64"]
    # the webhook arrives signed, once per event
    await world.deliver_outcomes()
    await world.deliver_outcomes()
    [(url, body, headers)] = world.receiver.got
    assert url == "https://rp.example.vn/hooks" and headers["webhook-id"] == completed.id
    assert webhooks.verify(created["webhook_secret"], headers, body, world.s.clock.time())
    assert not webhooks.verify(
        created["webhook_secret"], headers, body.replace(b"signed", b"SIGNED"), world.s.clock.time()
    )
    assert not webhooks.verify(created["webhook_secret"], headers, body, world.s.clock.time() + 3600)  # a replay
    garbled = {**headers, "webhook-signature": "v1,Ä" + headers["webhook-signature"][4:]}
    assert not webhooks.verify(created["webhook_secret"], garbled, body, world.s.clock.time())  # not a TypeError
    assert [s["signature"] for s in json.loads(body)["signatures"]] == done["signatures_b64"]


async def test_a_smartotp_transaction_code_confirms_the_request_it_names(world: World) -> None:
    await issue(world.s, algorithm="ecdsa-p384")
    client, _ = await world.relying_party()
    req = await world.remote.submit(
        client, docs("a.pdf", algorithm="sha384", urlsafe=True), description="x", account_id=ALICE.account_id
    )
    code = SmartOtpTransactionVerified(
        token_id="tok-1",
        account_id=ALICE.account_id,
        transaction_digest=req["documents_digest"],
        reference=req["_id"],
        time_step=12345,
        verified_at=world.s.clock.now(),
    )
    await world.remote.when_smartotp_verified_record(delivered(code, world.s.clock))
    done = await world.remote.confirm(ALICE, req["_id"], PIN)
    assert done["evidence"]["otp"]["method"] == "smartotp" and done["evidence"]["otp"]["time_step"] == 12345
    assert done["signature_algorithms"] == [signer.ECDSA_WITH["sha384"]]


async def test_five_wrong_pins_lock_the_credential_and_only_an_unlock_opens_it(world: World) -> None:

    cert = await issue(world.s)
    client, _ = await world.relying_party()
    req = await world.remote.submit(client, docs("a"), description="x", account_id=ALICE.account_id)
    await world.remote.when_sms_otp_verified_record(sms_code(world, req))
    for left in (4, 3, 2, 1):
        with pytest.raises(Rejected, match=f"{left} tries left"):
            await world.remote.confirm(ALICE, req["_id"], "975310")
    with pytest.raises(Forbidden, match="locked"):
        await world.remote.confirm(ALICE, req["_id"], "975310")
    with pytest.raises(Forbidden, match="locked"):
        await world.remote.confirm(ALICE, req["_id"], PIN)  # no reset by a right PIN, nor by time
    view = await world.remote.of_client(client, req["_id"])
    assert view["status"] == "waiting_for_user_confirm"  # the relying party learns nothing of it
    world.s.clock.advance(days=2)
    later = await world.remote.submit(client, docs("a"), description="x", account_id=ALICE.account_id)
    await world.remote.when_sms_otp_verified_record(sms_code(world, later))
    with pytest.raises(Forbidden, match="locked"):
        await world.remote.confirm(ALICE, later["_id"], PIN)  # no reset by time
    pins = world.s.pin
    with pytest.raises(Conflict, match="SMS code"):
        await pins.unlock(ALICE, cert["_id"], PIN, "135792")
    unlock_code = SmsOtpVerified(
        challenge_id="ch-unlock",
        purpose=OtpPurpose.UNLOCK,
        subject=cert["_id"],
        account_id=ALICE.account_id,
        phone="+84912345678",
        verified_at=world.s.clock.now(),
    )
    await pins.when_sms_otp_verified_allow_unlock(delivered(unlock_code, world.s.clock))
    with pytest.raises(Forbidden):
        await pins.unlock(MALLORY, cert["_id"], PIN, "135792")
    await pins.unlock(ALICE, cert["_id"], PIN, "135792")
    with pytest.raises(Conflict):
        await pins.unlock(ALICE, cert["_id"], PIN, "135792")  # the SMS code was used up
    req2 = await world.remote.submit(client, docs("b"), description="x", account_id=ALICE.account_id)
    await world.remote.when_sms_otp_verified_record(sms_code(world, req2))
    assert (await world.remote.confirm(ALICE, req2["_id"], "135792"))["status"] == "signed"


async def test_bad_requests_are_refused_and_nothing_is_asked(world: World) -> None:
    cert = await issue(world.s)
    client, _ = await world.relying_party()
    cases = [
        (docs(*[f"d{i}" for i in range(51)]), "too_many_documents"),
        ([Document("x", base64.b64encode(b"short").decode(), "sha256")], "invalid_hash"),
        ([Document("x", "not*base64!", "sha256")], "invalid_hash"),
        ([Document("x", base64.b64encode(digest("x", "sha384")).decode(), "sha256")], "invalid_hash"),
        ([Document("x", base64.b64encode(digest("x")).decode(), "md5")], "unsupported_hash_algorithm"),
    ]
    for documents, code in cases:
        with pytest.raises(Invalid) as err:
            await world.remote.submit(client, documents, description="x", account_id=ALICE.account_id)
        assert err.value.code == code
    with pytest.raises(NotFound):
        await world.remote.submit(client, docs("a"), description="x", account_id="acct-nobody")
    with pytest.raises(NotFound):
        await world.remote.submit(
            client, docs("a"), description="x", account_id=MALLORY.account_id, certificate_id=cert["_id"]
        )
    await world.s.lifecycle.operator_act(OPERATOR, cert["_id"], "suspend", "unspecified", None)
    with pytest.raises(Conflict, match="not active"):
        await world.remote.submit(client, docs("a"), description="x", certificate_id=cert["_id"])
    assert not rp_only(world.s.store.of_type(SignatureRequested))
    with pytest.raises(OAuthError):
        await world.clients.token("client_credentials", client.client_id, "wrong")
    with pytest.raises(OAuthError):
        await world.clients.token("password", client.client_id, "wrong")


async def test_an_unconfirmed_request_expires_and_a_suspension_stops_a_waiting_one(world: World) -> None:
    cert = await issue(world.s)
    client, _ = await world.relying_party()
    req = await world.remote.submit(client, docs("a"), description="x", account_id=ALICE.account_id)
    late = await world.remote.submit(client, docs("b"), description="x", account_id=ALICE.account_id)
    await world.remote.when_sms_otp_verified_record(sms_code(world, late))
    await world.s.lifecycle.operator_act(OPERATOR, cert["_id"], "suspend", "unspecified", None)
    with pytest.raises(Conflict, match="not active"):
        await world.remote.confirm(ALICE, late["_id"], PIN)
    world.s.clock.advance(minutes=6)
    assert await world.remote.expire_due() == 3  # the two, and the acceptance record of the activation
    assert await world.remote.expire_due() == 0
    assert len(rp_only(world.s.store.of_type(SignatureExpired))) == 2
    with pytest.raises(Conflict):
        await world.remote.confirm(ALICE, req["_id"], PIN)
    await world.deliver_outcomes()
    assert {json.loads(b)["status"] for _, b, _ in world.receiver.got} == {"expired"}


async def test_webhooks_are_retried_with_backoff_until_the_receiver_answers(world: World) -> None:
    await issue(world.s)
    client, _ = await world.relying_party()
    req = await world.remote.submit(client, docs("a"), description="x", account_id=ALICE.account_id)
    await world.remote.reject(ALICE, req["_id"])
    world.receiver.down = True
    await world.deliver_outcomes()
    assert not world.receiver.got
    world.s.clock.advance(seconds=0.5)
    assert await world.webhooks.deliver_due() == 0  # not yet due
    world.receiver.down = False
    world.s.clock.advance(seconds=1)
    assert await world.webhooks.deliver_due() == 1
    [(_, body, headers)] = world.receiver.got
    assert json.loads(body)["status"] == "rejected"
    delivery = await world.webhooks.deliveries.get(headers["webhook-id"])
    assert delivery is not None and delivery["attempts"] == 2 and delivery["status"] == "delivered"


# --------------------------------------------------------------------------- CSC v2


async def authorised(
    world: World,
    algorithm: str = "ecdsa-p256",
    n: int = 2,
    order: str = "order-1",
    prepare: Callable[[dict[str, Any]], list[bytes]] | None = None,
) -> tuple[Client, dict[str, Any], list[bytes], str]:
    """A credential, a relying party and a SAD for ``n`` digests (or those ``prepare`` makes for the
    certificate), confirmed by the subscriber."""
    cert = await issue(world.s, order, algorithm=algorithm)
    client, _ = await world.relying_party()
    raw = prepare(cert) if prepare else [digest(f"page {i} of {order}") for i in range(n)]
    n = len(raw)
    body = csc_wire.AuthorizeIn(
        credentialID=cert["_id"],
        numSignatures=n,
        hashes=[base64.b64encode(r).decode() for r in raw],
        authData=[csc_wire.AuthData(id="PIN"), csc_wire.AuthData(id="OTP")],
    )
    handle = (await world.csc.authorize(client, body, "203.0.113.9"))["handle"]
    status, out = await world.csc.authorize_check(client, csc_wire.HandleIn(handle=handle))
    assert (status, out) == (202, {"handle": handle})
    req = await world.remote.requests.get(handle)
    assert req is not None
    await world.remote.when_sms_otp_verified_record(sms_code(world, req))
    await world.remote.confirm(ALICE, handle, PIN)
    status, out = await world.csc.authorize_check(client, csc_wire.HandleIn(handle=handle))
    assert status == 200 and 0 < out["expiresIn"] <= 300
    return client, cert, raw, out["SAD"]


def sign_hash(
    cert: dict[str, Any], sad: str, raw: list[bytes], algo: str = signer.ECDSA_WITH["sha256"], **kw: Any
) -> csc_wire.SignHashIn:
    return csc_wire.SignHashIn(
        credentialID=cert["_id"], SAD=sad, hashes=[base64.b64encode(r).decode() for r in raw], signAlgo=algo, **kw
    )


async def test_csc_a_sad_signs_each_authorised_digest_exactly_once(world: World) -> None:
    client, cert, raw, sad = await authorised(world)
    # concurrent uses of one SAD: each digest is signed once
    results = await asyncio.gather(
        world.csc.sign_hash(client, sign_hash(cert, sad, raw)),
        world.csc.sign_hash(client, sign_hash(cert, sad, raw)),
        return_exceptions=True,
    )
    ok = [r for r in results if isinstance(r, list)]
    assert len(ok) == 1 and len([r for r in results if isinstance(r, csc_wire.CscError)]) == 1
    for r, sig in zip(raw, ok[0], strict=True):
        verify_signature(cert, base64.b64decode(sig), r)
    with pytest.raises(csc_wire.CscError, match="not authorized"):
        await world.csc.sign_hash(client, sign_hash(cert, sad, raw[:1]))  # a replay


async def test_csc_misuse_of_a_sad_is_refused_with_the_specs_errors(world: World) -> None:
    client, cert, raw, sad = await authorised(world, n=2)
    other, _ = await world.relying_party("another")
    refused = [
        (other, sign_hash(cert, sad, raw), "Invalid parameter SAD"),
        (client, sign_hash(cert, "forged-" + sad, raw), "Invalid parameter SAD"),
        (client, sign_hash({"_id": "0" * 32}, sad, raw), "Invalid parameter credentialID"),
        (client, sign_hash(cert, sad, [digest("something else")]), "Hash is not authorized by the SAD"),
        (client, sign_hash(cert, sad, [*raw, raw[0]]), "Numbers of signatures is too high"),
        (client, sign_hash(cert, sad, raw, algo=signer.ECDSA_WITH["sha384"]), "Invalid parameter signAlgo"),
        (client, sign_hash(cert, sad, raw, algo=signer.RSASSA_PSS), "Invalid parameter signAlgo"),
        (client, sign_hash(cert, sad, raw).model_copy(update={"hashes": ["!!"]}), "Invalid parameter hashes"),
    ]  # fmt: skip
    for who, body, message in refused:
        with pytest.raises(csc_wire.CscError, match=message):
            await world.csc.sign_hash(who, body)
    # one digest now, the other later: each once
    assert len(await world.csc.sign_hash(client, sign_hash(cert, sad, raw[:1]))) == 1
    await world.s.lifecycle.operator_act(OPERATOR, cert["_id"], "revoke", "keyCompromise", None)
    with pytest.raises(csc_wire.CscError, match="revoked"):
        await world.csc.sign_hash(client, sign_hash(cert, sad, raw[1:]))


async def test_csc_an_expired_sad_and_an_rsa_pss_credential(world: World) -> None:
    client, cert, raw, sad = await authorised(world, algorithm="rsa-3072-pss", n=1)
    info = world.csc.credential_info(cert, "chain", True, True)
    assert info["key"]["algo"] == [signer.RSASSA_PSS] and info["SCAL"] == "2"
    assert info["auth"]["expression"] == "PIN AND OTP" and len(info["cert"]["certificates"]) == 3
    with pytest.raises(csc_wire.CscError, match="signAlgoParams"):
        await world.csc.sign_hash(client, sign_hash(cert, sad, raw, algo=signer.RSASSA_PSS))
    params = base64.b64encode(signer.pss_params(signer.HASHES["sha256"])).decode()
    out = await world.csc.sign_hash_async(
        client, sign_hash(cert, sad, raw, algo=signer.RSASSA_PSS, signAlgoParams=params, operationMode="A")
    )
    [sig] = await world.csc.poll(client, csc_wire.PollIn(responseID=out["responseID"]))
    verify_signature(cert, base64.b64decode(sig), raw[0])
    client2, cert2, raw2, sad2 = await authorised(world, n=1, order="order-2")
    world.s.clock.advance(seconds=301)
    with pytest.raises(csc_wire.CscError, match="SAD expired"):
        await world.csc.sign_hash(client2, sign_hash(cert2, sad2, raw2))


async def test_csc_authorize_refuses_a_pin_sent_by_the_relying_party(world: World) -> None:
    cert = await issue(world.s)
    client, _ = await world.relying_party()
    body = csc_wire.AuthorizeIn(
        credentialID=cert["_id"],
        numSignatures=1,
        hashes=[base64.b64encode(digest("x")).decode()],
        authData=[csc_wire.AuthData(id="PIN", value=PIN)],
    )
    with pytest.raises(csc_wire.CscError, match="only in the kyso app"):
        await world.csc.authorize(client, body, None)
    with pytest.raises(csc_wire.CscError, match="numSignatures"):
        await world.csc.authorize(client, body.model_copy(update={"authData": [], "numSignatures": 2}), None)


# --------------------------------------------------------------------------- evidence


async def test_the_evidence_chain_verifies_and_a_tampered_entry_is_found(world: World) -> None:
    await issue(world.s)
    client, _ = await world.relying_party()
    for name in ("a", "b", "c"):
        req = await world.remote.submit(client, docs(name), description=name, account_id=ALICE.account_id)
        await world.remote.when_sms_otp_verified_record(sms_code(world, req))
        await world.remote.confirm(ALICE, req["_id"], PIN)
    await world.deliver_outcomes()
    await world.deliver_outcomes()  # each event is recorded once
    assert (await world.audit.head())[0] == 3
    assert await world.audit.sign_head(world.s.authority.seal_key) == 3
    export = await world.audit.export(ALICE.account_id, world.s.authority.seal_public_pem)
    assert evidence.verify_export(export) == []
    entry = export["entries"][1]["entry"]
    assert entry["how"]["pin_verified"] and entry["how"]["otp"]["method"] == "sms"
    assert entry["relying_party"]["client_id"] == client.client_id and entry["who"]["citizen_id"] == "001099012345"
    tampered = json.loads(json.dumps(export))
    tampered["entries"][1]["entry"]["what"]["documents"][0]["label"] = "something else"
    assert any("entry 2" in p for p in evidence.verify_export(tampered))
    stranger = await world.audit.export(MALLORY.account_id, world.s.authority.seal_public_pem)
    assert all("entry" not in e for e in stranger["entries"]) and evidence.verify_export(stranger) == []
