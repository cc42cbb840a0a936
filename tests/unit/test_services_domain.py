from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from kyso_client import vneid
from kyso_otp import domain as otp
from kyso_payment import vnpay
from kyso_registration import domain as reg
from kyso_signing.credentials import keywrap
from kyso_signing.pki import keys as pki


def test_packages_respect_decree_23_and_are_priced_in_whole_dong() -> None:
    assert {p.validity_years for p in reg.PACKAGES.values()} == {1, 2, 3}
    assert all(isinstance(p.price_vnd, int) and p.price_vnd > 0 for p in reg.PACKAGES.values())


@pytest.mark.parametrize("pw", ["short", "aaaaaaaaaaaa", "password123", "x+84912345678y", "an.nguyen-xyz123"])
def test_weak_passwords_are_refused(pw: str) -> None:
    assert reg.password_problems(pw, "+84912345678", "an.nguyen@example.vn")


def test_a_reasonable_password_passes() -> None:
    assert reg.password_problems("Ky-so an toan 2025!", "+84912345678", "an@example.vn") == []


def test_the_vneid_assertion_is_a_jws_checked_with_vneids_key_only() -> None:
    public = vneid.sandbox_key().public_key()
    verifier = reg.VneidVerifier(public.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode())
    ident = vneid.identity("001099012345", "Trần Thị B", "1995-02-03")
    assertion = vneid.sign(ident)
    assert verifier.identity(assertion) == ident
    assert verifier.identity(vneid.tampered(assertion, full_name="Trần Thị C")) is None
    assert verifier.identity(vneid.sign(ident, ec.generate_private_key(ec.SECP256R1()))) is None
    header, payload, _ = assertion.split(".")
    none_alg = base64.urlsafe_b64encode(b'{"alg":"none"}').decode().rstrip("=")
    assert verifier.identity(f"{none_alg}.{payload}.") is None
    assert verifier.identity(f"{header}.{payload}.") is None
    assert verifier.identity("!!not a jws!!") is None


def test_vnpay_signature_round_trip_and_tamper_detection() -> None:
    params = {
        "vnp_Amount": "80000000",
        "vnp_TxnRef": "abc",
        "vnp_OrderInfo": "kyso đơn hàng 1",
        "vnp_ResponseCode": "00",
    }
    signed = {**params, "vnp_SecureHash": vnpay.sign(params, "secret")}
    assert vnpay.verify(signed, "secret")
    assert not vnpay.verify({**signed, "vnp_Amount": "1"}, "secret")
    assert not vnpay.verify(signed, "other-secret")
    assert not vnpay.verify(params, "secret")
    assert len(signed["vnp_SecureHash"]) == 128  # HMAC-SHA512 hex


def test_validity_is_whole_calendar_years_even_across_29_february() -> None:
    leap = datetime(2028, 2, 29, 10, 0, tzinfo=UTC)
    assert pki.add_years(leap, 1) == datetime(2029, 2, 28, 10, 0, tzinfo=UTC)  # never longer than a year
    assert pki.add_years(leap, 3) == datetime(2031, 2, 28, 10, 0, tzinfo=UTC)
    start = datetime(2027, 3, 1, 8, 30, tzinfo=UTC)  # a span that contains 29 February 2028
    assert pki.add_years(start, 1) == datetime(2028, 3, 1, 8, 30, tzinfo=UTC)  # 366 days, not 365


@pytest.mark.parametrize("pin", ["12345", "123456", "000000", "111111111", "12a456", "987654", "١٢٣٤٥٦"])
def test_trivial_or_malformed_pins_are_refused(pin: str) -> None:
    assert keywrap.pin_problem(pin)


def test_subscriber_key_needs_the_right_pin_and_owner() -> None:
    master = b"m" * 32
    sealed = keywrap.seal_with_pin(master, "482915", "subscriber:1", b"key-der")
    assert keywrap.open_with_pin(master, "482915", "subscriber:1", sealed) == b"key-der"
    for pin, owner, key in (
        ("482916", "subscriber:1", master),
        ("482915", "subscriber:2", master),
        ("482915", "subscriber:1", b"n" * 32),
    ):
        with pytest.raises(InvalidTag):
            keywrap.open_with_pin(key, pin, owner, sealed)


def test_sms_codes_are_six_digits_and_stored_keyed() -> None:
    codes = {otp.new_sms_code() for _ in range(200)}
    assert all(otp.is_code_shape(c) for c in codes) and len(codes) > 150
    h1 = otp.sms_code_hash(b"k1", "c", "123456")
    assert h1 != otp.sms_code_hash(b"k2", "c", "123456") != otp.sms_code_hash(b"k1", "d", "123456")


def test_production_refuses_to_start_without_its_ca_and_takes_the_one_kyso_ca_makes(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import base64
    import re

    from kyso_signing import ca_admin
    from kyso_signing.settings import SigningSettings

    master = base64.b64encode(b"m" * 32).decode()
    common = {"KYSO_PROFILE": "production", "SIGNING_MASTER_KEY": master, "AUTH_JWKS_URL": "http://reg.example.vn/j"}
    for k, v in common.items():
        monkeypatch.setenv(k, v)
    with pytest.raises(ValueError, match="CA_ROOT_CERTIFICATE"):
        SigningSettings()
    assert ca_admin.main(["new-hierarchy", "--organisation", "Công ty kyso", "--root-cn", "kyso Root CA G1"]) == 0
    printed = dict(re.findall(r'^(CA_[A-Z_]+)="(.*?)"$', capsys.readouterr().out, flags=re.S | re.M))
    assert set(printed) == {
        "CA_ROOT_CERTIFICATE",
        "CA_ROOT_KEY_SEALED",
        "CA_ISSUING_CERTIFICATE",
        "CA_ISSUING_KEY_SEALED",
    }
    assert "PRIVATE KEY" not in "".join(printed.values())  # keys leave only sealed
    for k, v in printed.items():
        monkeypatch.setenv(k, v)
    settings = SigningSettings()
    assert settings.ca_root_key_sealed == printed["CA_ROOT_KEY_SEALED"]
    monkeypatch.setenv("CA_ISSUING_KEY_SEALED", "")
    with pytest.raises(ValueError):
        SigningSettings()
