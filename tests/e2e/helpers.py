"""Building blocks for end-to-end tests: a citizen with an account, optionally with a SmartOTP token."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

import pytest

from kyso_client import vneid
from kyso_client.api import Endpoints, KysoApi, KysoError, eventually
from kyso_client.device import SoftToken
from kyso_client.integrator import Integrator, register_integrator
from kyso_client.journey import open_account
from kyso_kit.auth import TokenIssuer
from kyso_kit.devkeys import dev_ec_private_pem
from stack import Stack

PASSWORD = "Ky-so an toan 2025!"
SMARTOTP_PIN = "730514"


@dataclass
class Citizen:
    api: KysoApi
    account_id: str
    phone: str
    token_id: str = ""
    device: SoftToken | None = None

    def code(self, device_time: float | None = None) -> str:
        assert self.device
        return self.device.code(SMARTOTP_PIN, device_time)


async def new_citizen(api: KysoApi) -> Citizen:
    acct = await open_account(api, "Hoàng Văn K", PASSWORD, "1985-04-30")
    # The otp service learns the account (and where to send its codes) from AccountCreated.
    await eventually(lambda: api.otp_methods(acct.account_id), lambda m: m["methods"]["sms"]["available"])
    return Citizen(api, acct.account_id, acct.phone)


async def sms_verified(c: Citizen, purpose: str, subject: str | None = None) -> str:
    """A verified SMS challenge of the citizen's account (retrying while otp learns of the new account)."""

    async def ask() -> Any:
        return await c.api.sms_challenge(purpose, subject or c.account_id, account_id=c.account_id)

    ch = await eventually(ask)
    await c.api.verify_sms(ch["challenge_id"], await c.api.dev_sms_code(c.phone, ch["challenge_id"]))
    return str(ch["challenge_id"])


async def activate_device(c: Citizen, enrolment: dict[str, Any]) -> None:
    """``enrolment``: the answer of the enrolment (or PIN reset): its ``token_id`` and ``activation_code``."""
    device = await c.api.smartotp_activate(
        enrolment["token_id"], enrolment["activation_code"], f"dev-{uuid.uuid4().hex[:10]}"
    )
    c.token_id = device["token_id"]
    c.device = SoftToken.from_activation(device, SMARTOTP_PIN, SMARTOTP_PIN)


async def enrolled_citizen(api: KysoApi) -> Citizen:
    c = await new_citizen(api)
    ch = await sms_verified(c, "smartotp_enrolment")
    terms = await api.smartotp_terms()
    enrol = await api.smartotp_enrol(c.account_id, ch, terms["version"])
    await activate_device(c, enrol)
    # Enrol with the previous step's code (still inside the window), so tests have the current and
    # the next step's codes to use without waiting for the clock.
    # The device adds the clock offset it learned at activation (server time minus its own, which under
    # load can be a second or two off): take it out, so the code is the server's previous step exactly.
    assert c.device is not None
    offset = c.device.clock_offset
    try:
        await api.smartotp_verify(c.token_id, c.code(device_time=time.time() - 30 - offset))
    except KysoError:  # a step boundary passed in flight: the step before the new one, never the current
        await api.smartotp_verify(c.token_id, c.code(device_time=time.time() - 30 - offset))
    return c


def stale_token(account_id: str) -> str:
    """A valid session whose password entry is ten minutes old (dev signing key)."""
    return TokenIssuer(dev_ec_private_pem("auth")).issue(account_id, auth_time=int(time.time()) - 600, amr=["pwd"])


async def expect(code: str, status: int, coro: Any) -> KysoError:
    with pytest.raises(KysoError) as err:
        await coro
    assert (err.value.status, err.value.code) == (status, code), err.value.body
    return err.value


def create_operator_account(stack: Stack, phone: str, roles: tuple[str, ...] = ("operator",)) -> str:
    """What an administrator does: the real ``kyso-admin`` command against this stack's database."""
    return stack.create_operator(phone, PASSWORD, roles)


async def operator_console(stack: Stack, endpoints: Endpoints, roles: tuple[str, ...] = ("operator",)) -> KysoApi:
    """A client signed in as a new operator account."""
    phone = vneid.random_phone()
    create_operator_account(stack, phone, roles)
    op = KysoApi(endpoints)
    await op.login(phone, PASSWORD)
    return op


async def registered_integrator(
    stack: Stack, endpoints: Endpoints, name: str, webhook_url: str | None
) -> tuple[Integrator, str]:
    """An operator registers a relying party; it signs in with client credentials. (+ its webhook key)"""
    op = await operator_console(stack, endpoints)
    try:
        return await register_integrator(op, endpoints.signing, name, webhook_url)
    finally:
        await op.aclose()
