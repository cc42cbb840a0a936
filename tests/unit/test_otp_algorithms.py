"""Published test vectors through the code paths we use: RFC 4226 App. D and RFC 6238 App. B through
pyotp as the otp service calls it, RFC 6287 App. C through our own OCRA."""

from __future__ import annotations

import pytest

from kyso_contracts import otp_algorithms as algorithms
from kyso_otp.domain import TokenPolicy, hotp

SEED20 = b"12345678901234567890"
SEED32 = b"12345678901234567890123456789012"
SEED64 = b"1234567890123456789012345678901234567890123456789012345678901234"


@pytest.mark.parametrize(
    ("counter", "expected"),
    list(enumerate(["755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583", "399871",
                    "520489"])),
)  # fmt: skip
def test_rfc4226_appendix_d(counter: int, expected: str) -> None:
    assert hotp(SEED20, counter, TokenPolicy(algorithm="SHA1", digits=6)) == expected


RFC6238 = [
    (59, "94287082", "46119246", "90693936"),
    (1111111109, "07081804", "68084774", "25091201"),
    (1111111111, "14050471", "67062674", "99943326"),
    (1234567890, "89005924", "91819424", "93441116"),
    (2000000000, "69279037", "90698825", "38618901"),
    (20000000000, "65353130", "77737706", "47863826"),
]


@pytest.mark.parametrize(("t", "sha1", "sha256", "sha512"), RFC6238)
def test_rfc6238_appendix_b(t: int, sha1: str, sha256: str, sha512: str) -> None:
    step = algorithms.time_step(t, 30)
    assert hotp(SEED20, step, TokenPolicy(algorithm="SHA1", digits=8)) == sha1
    assert hotp(SEED32, step, TokenPolicy(algorithm="SHA256", digits=8)) == sha256
    assert hotp(SEED64, step, TokenPolicy(algorithm="SHA512", digits=8)) == sha512


@pytest.mark.parametrize(
    ("question", "expected"),
    [("00000000", "237653"), ("11111111", "243178"), ("22222222", "653583"), ("33333333", "740991"),
     ("44444444", "608993"), ("55555555", "388898"), ("66666666", "816933"), ("77777777", "224598"),
     ("88888888", "750600"), ("99999999", "294470")],
)  # fmt: skip
def test_rfc6287_one_way_challenge_response(question: str, expected: str) -> None:
    assert algorithms.ocra("OCRA-1:HOTP-SHA1-6:QN08", SEED20, question) == expected


@pytest.mark.parametrize(
    ("question", "expected"),
    [("00000000", "95209754"), ("11111111", "55907591"), ("22222222", "22048402"), ("33333333", "24218844"),
     ("44444444", "36209546")],
)  # fmt: skip
def test_rfc6287_time_based(question: str, expected: str) -> None:
    assert algorithms.ocra("OCRA-1:HOTP-SHA512-8:QN08-T1M", SEED64, question, time_steps=0x132D0B6) == expected


@pytest.mark.parametrize(
    ("counter", "question", "expected"),
    [(0, "00000000", "07016083"), (1, "11111111", "63947962"), (2, "22222222", "70123924"),
     (3, "33333333", "25341727"), (4, "44444444", "33203315")],
)  # fmt: skip
def test_rfc6287_counter_based(counter: int, question: str, expected: str) -> None:
    assert algorithms.ocra("OCRA-1:HOTP-SHA512-8:C-QN08", SEED64, question, counter=counter) == expected


def test_unsupported_suites_and_bad_parameters_are_refused() -> None:
    for suite in ("OCRA-1:HOTP-SHA1-6:QN08-PSHA1", "OCRA-2:HOTP-SHA1-6:QN08", "nonsense"):
        with pytest.raises(ValueError):
            algorithms.OcraSuite.parse(suite)
    with pytest.raises(ValueError):
        algorithms.ocra("OCRA-1:HOTP-SHA512-8:QN08-T1M", SEED64, "0")
    with pytest.raises(ValueError):
        algorithms.ocra("OCRA-1:HOTP-SHA1-6:QN08", SEED20, "not a number")
