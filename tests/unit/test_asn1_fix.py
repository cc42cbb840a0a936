"""The asn1crypto fix (kyso_signing.asn1_fix): only a length octet of exactly 0x80 means indefinite,
and what ``dump()`` produces is byte for byte what it produced before."""

from __future__ import annotations

import os

import pytest
from asn1crypto import core

from kyso_signing.pki import asn1_fix


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (b"\x30\x80", True),  # SEQUENCE, indefinite
        (b"\x30\x81\x80", False),  # SEQUENCE of 128 bytes: what asn1crypto 1.5.1 took for indefinite
        (b"\x30\x82\x01\x80", False),  # 384 bytes
        (b"\x04\x05", False),
        (b"\xa0\x80\x30\x81\x80", True),  # an explicit tag of indefinite length around a definite value
        (b"\xa0\x82\x01\x83\x30\x82\x01\x80", False),  # explicit [0] around 384 bytes
        (b"\x1f\x81\x00\x80", True),  # a high tag number, then an indefinite length
        (b"\x1f\x81\x00\x81\x80", False),
        (b"", False),
        (None, False),
    ],
)
def test_only_a_length_octet_of_0x80_is_indefinite(header: bytes | None, expected: bool) -> None:
    assert asn1_fix.indefinite(header) is expected


class Pair(core.Sequence):  # type: ignore[misc]
    _fields = [("a", core.OctetString), ("b", core.Integer)]  # noqa: RUF012


def test_dumps_are_unchanged_and_lengths_ending_in_0x80_are_not_re_encoded(monkeypatch: pytest.MonkeyPatch) -> None:
    asn1_fix.apply()
    re_encoded: list[int] = []
    original = Pair._set_contents

    def counting(self: Pair, force: bool = False) -> None:
        re_encoded.append(len(self._contents or b""))
        original(self, force)

    for size in (1, 100, 113, 114, 115, 116, 117, 118, 380, 1000):
        value = Pair({"a": os.urandom(size), "b": int.from_bytes(os.urandom(9), "big")})
        der = value.dump()
        loaded = Pair.load(der)
        monkeypatch.setattr(Pair, "_set_contents", counting)
        assert loaded.dump() == der  # a parsed value is written back as it was read ...
        monkeypatch.undo()
        assert loaded.dump(force=True) == der  # ... and re-encoding it gives the same DER
    assert re_encoded == []  # not even the sizes whose length octets end in 0x80 (128 bytes)
    assert any(Pair.load(Pair({"a": bytes(n), "b": 5}).dump())._header[-1:] == b"\x80" for n in range(110, 130))
    # indefinite BER is still re-encoded as DER
    ber = bytes.fromhex("30800401610201050000")
    assert Pair.load(ber).dump() == bytes.fromhex("3006040161020105")
