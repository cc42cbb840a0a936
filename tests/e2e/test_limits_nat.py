"""Limits bind to what is guessed, over real HTTP: a guesser and a citizen behind one address (a NAT,
a proxy, a port mapping), and a guesser that writes its own X-Forwarded-For.

The guesser connects from 127.0.0.2: a peer that is neither in TRUSTED_PROXIES (empty here) nor one
uvicorn itself believes forwarding headers from, so what the service sees is what a deployment sees
of a client on the internet."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from kyso_client.api import Endpoints, KysoApi, KysoError

from .helpers import PASSWORD, expect, new_citizen, sms_verified

NAT = "127.0.0.2"
BACKSTOP = 100  # OTP_ACTIVATION_FAILURES_PER_ADDRESS_PER_HOUR's default


@pytest.fixture
async def nat(endpoints: Endpoints) -> AsyncIterator[KysoApi]:
    """A client connecting from the NAT's address."""
    a = KysoApi(endpoints)
    await a.http.aclose()
    a.http = httpx.AsyncClient(transport=httpx.AsyncHTTPTransport(local_address=NAT), timeout=30)
    try:
        yield a
    finally:
        await a.aclose()


async def test_a_guesser_behind_a_nat_exhausts_its_bound_and_a_citizen_behind_it_activates_at_once(
    api: KysoApi, nat: KysoApi, endpoints: Endpoints
) -> None:
    url = f"{endpoints.otp}/v1/smartotp/activations"
    for _ in range(BACKSTOP):  # wrong codes sprayed at enrolments: each counted at the NAT's address
        guess = {"token_id": uuid.uuid4().hex, "activation_code": "0123456789", "device_id": "g"}
        assert (await nat.http.post(url, json=guess)).status_code == 400
    refused = await nat.http.post(url, json=guess)
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 3500
    # A forged X-Forwarded-For from an untrusted peer changes nothing.
    forged = await nat.http.post(url, json=guess, headers={"X-Forwarded-For": "198.51.100.23"})
    assert forged.status_code == 429
    forged = await nat.http.post(url, json=guess, headers={"Forwarded": "for=198.51.100.24"})
    assert forged.status_code == 429

    # A citizen behind the same NAT enrols and activates their own device at once.
    c = await new_citizen(api)
    terms = (await api.smartotp_terms())["version"]
    enrol = await api.smartotp_enrol(c.account_id, await sms_verified(c, "smartotp_enrolment"), terms)
    device = await nat.smartotp_activate(enrol["token_id"], enrol["activation_code"], "citizen-phone")
    assert device["token_id"] == enrol["token_id"] and device["otpauth_uri"].startswith("otpauth://totp/")

    # The enrolment's own bound: five wrong codes void it, whoever sends them and from wherever.
    c2 = await new_citizen(api)
    enrol = await api.smartotp_enrol(c2.account_id, await sms_verified(c2, "smartotp_enrolment"), terms)
    wrong = f"{(int(enrol['activation_code']) + 1) % 10**10:010d}"
    for left in (4, 3, 2, 1, 0):
        err = await expect("invalid_activation_code", 400, api.smartotp_activate(enrol["token_id"], wrong, "d"))
        assert err.body["error"]["details"]["attempts_left"] == left
    await expect(
        "invalid_activation_code", 400, api.smartotp_activate(enrol["token_id"], enrol["activation_code"], "d")
    )


async def test_a_password_guesser_locks_out_only_its_own_address(
    api: KysoApi, nat: KysoApi, endpoints: Endpoints
) -> None:
    c = await new_citizen(api)
    await api.login(c.phone, PASSWORD)  # the owner's usual address (127.0.0.1)
    for _ in range(5):
        await expect("invalid_credentials", 401, nat.login(c.phone, "wrong password!!"))
    await expect("invalid_credentials", 401, nat.login(c.phone, PASSWORD))  # the guesser's address waits
    forged = await nat.http.post(
        f"{endpoints.registration}/v1/sessions",
        json={"phone": c.phone, "password": PASSWORD},
        headers={"X-Forwarded-For": "127.0.0.1"},  # claiming the owner's address changes nothing
    )
    assert forged.status_code == 401
    assert (await api.login(c.phone, PASSWORD))["account_id"] == c.account_id  # the owner: at once
    other = await new_citizen(api)
    assert await nat.login(other.phone, PASSWORD)  # another citizen behind the NAT: at once


async def test_filling_a_phones_cap_anonymously_does_not_stop_its_accounts_codes(api: KysoApi, nat: KysoApi) -> None:
    c = await new_citizen(api)
    statuses = []
    for _ in range(12):  # phone verification needs no account: anybody may ask codes for the number
        try:
            await nat.sms_challenge("phone_verification", uuid.uuid4().hex, phone=c.phone)
            statuses.append(201)
        except KysoError as exc:
            statuses.append(exc.status)
    assert statuses[-1] == 429 and statuses.count(201) == 9  # ten a sliding hour, one used at registration
    # The account's own codes (consent, signing, unlock) count per account: they still arrive at once.
    await api.login(c.phone, PASSWORD)
    assert await sms_verified(c, "contract_consent", "contract-nat")
