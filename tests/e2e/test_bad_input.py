"""Bad input over real HTTP: a clear 4xx with a stable code, and nothing changed."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from kyso_client import vneid
from kyso_client.api import Endpoints, KysoApi, KysoError, eventually
from kyso_client.journey import walk


async def expect(code: str, status: int, coro: Any) -> KysoError:
    with pytest.raises(KysoError) as err:
        await coro
    assert (err.value.status, err.value.code) == (status, code), err.value.body
    body = err.value.body["error"]
    assert body["message"] and body["message_vi"]
    return err.value


async def registered(api: KysoApi) -> tuple[str, str]:
    ident = vneid.identity(vneid.random_citizen_id(), "Võ Thị E", "1988-08-08")
    reg = await api.vneid_register(vneid.sign(ident))
    await api.confirm_registration(reg["registration_id"])
    return reg["registration_id"], vneid.random_phone()


async def test_vneid_handover_rejects_forgeries_replays_and_level_one(api: KysoApi) -> None:
    ident = vneid.identity(vneid.random_citizen_id(), "Đỗ Văn F", "1970-01-01")
    sig = vneid.sign(ident)
    await expect("invalid_vneid_signature", 401, api.vneid_register(vneid.tampered(sig, full_name="Đỗ Văn G")))
    await expect("invalid_vneid_signature", 401,
                 api.vneid_register(vneid.sign(ident, ec.generate_private_key(ec.SECP256R1()))))  # fmt: skip
    await expect("invalid_vneid_signature", 401, api.vneid_register("not.a.jws"))
    unsigned = sig.rsplit(".", 1)[0] + "."
    await expect("invalid_request", 422, api.vneid_register(unsigned))
    level1 = {**ident, "eid_level": 1, "nonce": ident["nonce"] + "x"}
    await expect("eid_level_too_low", 403, api.vneid_register(vneid.sign(level1)))
    stale = {**ident, "issued_at": "2020-01-01T00:00:00+00:00", "nonce": ident["nonce"] + "y"}
    await expect("identity_expired", 400, api.vneid_register(vneid.sign(stale)))
    await api.vneid_register(sig)
    await expect("identity_replayed", 409, api.vneid_register(sig))
    bad_id = {**ident, "citizen_id": "12", "nonce": ident["nonce"] + "z"}
    await expect("invalid_identity", 422, api.vneid_register(vneid.sign(bad_id)))


async def test_account_needs_confirmation_a_verified_phone_and_a_strong_password(api: KysoApi) -> None:
    ident = vneid.identity(vneid.random_citizen_id(), "Bùi Văn H", "1999-09-09")
    reg = (await api.vneid_register(vneid.sign(ident)))["registration_id"]
    phone = vneid.random_phone()
    await expect(
        "registration_not_confirmed", 409, api.create_account(reg, phone, "h@example.vn", "Ky-so an toan 2025!")
    )
    await api.confirm_registration(reg)
    await expect("phone_not_verified", 409, api.create_account(reg, phone, "h@example.vn", "Ky-so an toan 2025!"))
    ch = await api.sms_challenge("phone_verification", reg, phone=phone)
    await api.verify_sms(ch["challenge_id"], await api.dev_sms_code(phone, ch["challenge_id"]))
    await eventually(lambda: api.registration(reg), lambda g: phone in g["verified_phones"])
    await expect("weak_password", 422, api.create_account(reg, phone, "h@example.vn", "1234567890"))
    await expect("invalid_request", 422, api.create_account(reg, "0912345678", "h@example.vn", "Ky-so an toan 2025!"))
    assert (await api.registration(reg))["account_id"] is None  # nothing half-written
    await api.create_account(reg, phone, "h@example.vn", "Ky-so an toan 2025!")
    await expect("account_exists", 409, api.create_account(reg, phone, "h@example.vn", "Ky-so an toan 2025!"))


async def test_sms_otp_wrong_codes_lock_the_challenge_and_locked_looks_like_wrong(api: KysoApi) -> None:
    reg, phone = await registered(api)
    ch = await api.sms_challenge("phone_verification", reg, phone=phone)
    code = await api.dev_sms_code(phone, ch["challenge_id"])
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    answers = []
    for _ in range(5):
        answers.append((await expect("invalid_otp", 400, api.verify_sms(ch["challenge_id"], wrong))).body)
    locked = (await expect("invalid_otp", 400, api.verify_sms(ch["challenge_id"], code))).body
    assert locked == answers[0]  # the right code after lock-out: same answer as a wrong one
    await expect("invalid_code_format", 422, api.verify_sms(ch["challenge_id"], "12ab56"))
    await asyncio.sleep(0.5)
    assert phone not in (await api.registration(reg))["verified_phones"]


async def test_login_is_bounded_and_locked_answers_like_wrong(api: KysoApi, endpoints: Endpoints) -> None:
    reg, phone = await registered(api)
    ch = await api.sms_challenge("phone_verification", reg, phone=phone)
    await api.verify_sms(ch["challenge_id"], await api.dev_sms_code(phone, ch["challenge_id"]))
    await eventually(lambda: api.registration(reg), lambda g: phone in g["verified_phones"])
    password = "Ky-so an toan 2025!"
    await api.create_account(reg, phone, "lock@example.vn", password)
    await api.login(phone, password)
    bodies = [(await expect("invalid_credentials", 401, api.login(phone, "wrong password!!"))).body for _ in range(5)]
    locked = (await expect("invalid_credentials", 401, api.login(phone, password))).body
    assert locked == bodies[0]
    await expect("invalid_credentials", 401, api.login(vneid.random_phone(), password))


async def test_user_apis_need_a_valid_token_and_the_owner(endpoints: Endpoints) -> None:
    owner = await walk(endpoints, lambda _: None)
    async with httpx.AsyncClient() as http:
        for url in (f"{endpoints.registration}/v1/orders/{owner.order_id}",
                    f"{endpoints.payment}/v1/payments?order_id={owner.order_id}",
                    f"{endpoints.signing}/v1/certificates/{owner.certificate_id}"):  # fmt: skip
            r = await http.get(url)
            assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
            r = await http.get(url, headers={"Authorization": "Bearer not.a.token"})
            assert r.status_code == 401
    intruder = KysoApi(endpoints)
    try:
        reg, phone = await registered(intruder)
        ch = await intruder.sms_challenge("phone_verification", reg, phone=phone)
        await intruder.verify_sms(ch["challenge_id"], await intruder.dev_sms_code(phone, ch["challenge_id"]))
        await eventually(lambda: intruder.registration(reg), lambda g: phone in g["verified_phones"])
        await intruder.create_account(reg, phone, "intruder@example.vn", "Ky-so an toan 2025!")
        await expect("forbidden", 403, intruder.order(owner.order_id))
        await expect("forbidden", 403, intruder.payment_for_order(owner.order_id))
        await expect("forbidden", 403, intruder.certificate(owner.certificate_id))
        await expect("forbidden", 403, intruder.sms_challenge("contract_consent", "x", account_id=owner.account_id))
        await expect("unknown_package", 422, intruder.place_order("PERSONAL_4Y"))
    finally:
        await intruder.aclose()


async def test_gateway_notifications_are_verified_and_idempotent(endpoints: Endpoints) -> None:
    from urllib.parse import parse_qsl, urlsplit

    from kyso_payment import vnpay

    api = KysoApi(endpoints)
    try:
        result = await walk(endpoints, lambda _: None)
        await api.login(result.phone, "Ky-so an toan 2025!")
        # The order is paid; a replayed or forged notification changes nothing.
        async with httpx.AsyncClient() as http:
            ipn = f"{endpoints.payment}/v1/payments/vnpay/ipn"
            r = await http.get(ipn, params={"vnp_TxnRef": "x", "vnp_Amount": "1", "vnp_SecureHash": "00"})
            assert r.json()["RspCode"] == "97"
            params = {
                "vnp_TxnRef": "nope",
                "vnp_Amount": "100",
                "vnp_ResponseCode": "00",
                "vnp_TransactionStatus": "00",
            }
            secret = "unknown-to-attackers"
            r = await http.get(ipn, params={**params, "vnp_SecureHash": vnpay.sign(params, secret)})
            assert r.json()["RspCode"] == "97"
        payment = await api.payment_for_order(result.order_id)
        assert payment["status"] == "confirmed"
        await expect("payment_not_pending", 409, api.checkout(payment["payment_id"]))
        # A second order, checked out twice and paid once: the second notification is "already confirmed".
        order = await api.place_order("PERSONAL_2Y")
        pay = await eventually(lambda: api.payment_for_order(order["order_id"]), timeout=60)
        url = (await api.checkout(pay["payment_id"]))["payment_url"]
        tampered = url.replace(f"vnp_Amount={pay['amount_vnd'] * 100}", "vnp_Amount=100")
        await expect("invalid_checkout_signature", 400, api.sandbox_pay(tampered))
        assert (await api.sandbox_pay(url))["ipn_response"]["RspCode"] == "00"
        assert (await api.sandbox_pay(url))["ipn_response"]["RspCode"] == "02"
        assert dict(parse_qsl(urlsplit(url).query))["vnp_Amount"] == str(pay["amount_vnd"] * 100)
    finally:
        await api.aclose()


async def test_activation_rejects_weak_pins_and_a_second_activation_and_bad_download_versions(
    endpoints: Endpoints,
) -> None:
    result = await walk(endpoints, lambda _: None)
    api = KysoApi(endpoints)
    try:
        await api.login(result.phone, "Ky-so an toan 2025!")
        await expect("not_pending_activation", 409, api.activate_certificate(result.certificate_id, "482915"))
        await expect("weak_pin", 422, api.activate_certificate(result.certificate_id, "123456"))
        await expect("already_signed", 409, api.ask_acceptance_signature(result.certificate_id))
        for junk in ("?version=both", "?version="):
            with pytest.raises(KysoError) as bad:
                await api.download(f"/v1/certificates/{result.certificate_id}/acceptance-record/pdf{junk}")
            assert bad.value.status == 422
        await expect("not_found", 404, api.certificate("doesnotexist"))
    finally:
        await api.aclose()
