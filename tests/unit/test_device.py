"""The device side of the soft token, without a server."""

from __future__ import annotations

import time

import pytest

from kyso_client.device import SoftToken, WeakPin, WrongPin, pin_problem


@pytest.mark.parametrize("pin", ["000000", "123456", "654321", "123123", "901234", "12345", "abcdef", "1" * 13])
def test_weak_or_malformed_pins_are_named(pin: str) -> None:
    assert pin_problem(pin)


def test_device_refuses_weak_pins_and_wrong_pins() -> None:
    from kyso_otp import domain

    seed = domain.new_seed()
    activation = {
        "token_id": "t1",
        "otpauth_uri": domain.key_uri(seed, "acct", domain.TokenPolicy()),
        "transaction_suite": domain.TRANSACTION_SUITE,
        "server_time": time.time(),
    }
    for weak in ("000000", "123456", "654321", "12345", "111111", "abcdef"):
        with pytest.raises(WeakPin):
            SoftToken.from_activation(activation, weak, weak)
    with pytest.raises(WeakPin):
        SoftToken.from_activation(activation, "730514", "730515")
    tok = SoftToken.from_activation(activation, "730514", "730514")
    t = 60_000_015.0 - tok.clock_offset  # mid-step in server time: no step boundary between the calls
    expected = domain.code_at(seed, 2_000_000, domain.TokenPolicy())
    assert tok.code("730514", device_time=t) == expected
    tok.change_pin("730514", "918273", "918273")
    assert tok.code("918273", device_time=t) == expected
    wrong_pins = 0
    for guess in ("730514", "111112", "222223", "333334"):
        try:
            assert tok.code(guess, device_time=t) != expected  # a wrong PIN never yields the right code…
        except WrongPin:
            wrong_pins += 1  # …and is usually caught on the device
    assert wrong_pins >= 2
