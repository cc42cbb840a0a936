"""Property-based tests of the SmartOTP rules: window, drift, replay, lock-out, resync, transaction binding."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kyso_contracts import otp_algorithms as algorithms
from kyso_contracts.transactions import DocumentsTransaction, PaymentTransaction
from kyso_otp import domain

POLICY = domain.TokenPolicy()
seeds = st.binary(min_size=20, max_size=64)
times = st.floats(min_value=1e9, max_value=4e9, allow_nan=False)
drifts = st.integers(min_value=-POLICY.max_drift, max_value=POLICY.max_drift)
offsets = st.integers(min_value=-30, max_value=30)


def code(seed: bytes, step: int, digest: str | None = None) -> str:
    return domain.code_at(seed, step, POLICY, digest)


@given(seeds, times, drifts, offsets)
def test_a_code_is_accepted_exactly_within_one_step_of_now_plus_drift(
    seed: bytes, t: float, drift: int, off: int
) -> None:
    now = algorithms.time_step(t)
    step = now + drift + off
    v = domain.verify(seed, code(seed, step), t, domain.TokenState(drift=drift), POLICY)
    if abs(off) <= POLICY.window:
        assert v.accepted and v.step == step and v.state.failures == 0
        expected = step - now if abs(step - now) > POLICY.window else 0  # ±1 is tolerance, not drift
        assert v.state.drift == max(-POLICY.max_drift, min(POLICY.max_drift, expected))
    else:
        # A different step may collide on 6 digits by chance (1 in a million per candidate): only then accepted.
        collision = any(code(seed, s) == code(seed, step) for s in range(now + drift - 1, now + drift + 2))
        assert v.accepted == collision


@given(seeds, times)
def test_a_code_is_never_accepted_twice(seed: bytes, t: float) -> None:
    step = algorithms.time_step(t)
    first = domain.verify(seed, code(seed, step), t, domain.TokenState(), POLICY)
    assert first.accepted
    again = domain.verify(seed, code(seed, step), t, first.state, POLICY)
    assert not again.accepted and again.state.failures == 1
    # …nor any earlier step's code, even inside the window.
    earlier = domain.verify(seed, code(seed, step - 1), t, first.state, POLICY)
    assert not earlier.accepted


@given(seeds, times, st.lists(st.text(alphabet="0123456789", min_size=6, max_size=6), min_size=1, max_size=12))
def test_lockout_after_max_consecutive_failures_and_locked_rejects_even_the_right_code(
    seed: bytes, t: float, guesses: list[str]
) -> None:
    state = domain.TokenState()
    right = {code(seed, algorithms.time_step(t) + d) for d in (-1, 0, 1)}
    for g in guesses:
        if g in right:
            continue
        before = state
        v = domain.verify(seed, g, t, state, POLICY)
        assert not v.accepted
        if before.locked(POLICY):
            assert v.state == before
        else:
            assert v.state.failures == before.failures + 1
        state = v.state
    if state.locked(POLICY):
        v = domain.verify(seed, code(seed, algorithms.time_step(t)), t, state, POLICY)
        assert not v.accepted and v.state == state  # locked: the right code is rejected, nothing changes


@given(seeds, times, st.integers(min_value=0, max_value=POLICY.max_failures - 1))
def test_a_success_resets_the_failure_counter(seed: bytes, t: float, failures: int) -> None:
    v = domain.verify(seed, code(seed, algorithms.time_step(t)), t, domain.TokenState(failures=failures), POLICY)
    assert v.accepted and v.state.failures == 0


@given(seeds, times, st.integers(min_value=-POLICY.resync_search, max_value=POLICY.resync_search - 1))
def test_resync_from_two_consecutive_codes_learns_the_drift(seed: bytes, t: float, skew: int) -> None:
    now = algorithms.time_step(t)
    device = now + skew
    v = domain.resync(seed, code(seed, device), code(seed, device + 1), t, domain.TokenState(), POLICY)
    assert v.accepted
    expected = skew + 1 if abs(skew + 1) > POLICY.window else 0
    assert v.state.drift == max(-POLICY.max_drift, min(POLICY.max_drift, expected))
    assert v.state.last_step == device + 1
    # The learned drift makes the device's next code verify even though it is far from server time.
    if abs(skew + 1) <= POLICY.max_drift:
        nxt = domain.verify(seed, code(seed, device + 2), t + POLICY.period, v.state, POLICY)  # 30 s later
        assert nxt.accepted


@given(seeds, times)
def test_resync_refuses_non_consecutive_codes(seed: bytes, t: float) -> None:
    now = algorithms.time_step(t)
    v = domain.resync(seed, code(seed, now), code(seed, now + 2), t, domain.TokenState(), POLICY)
    if code(seed, now + 1) != code(seed, now + 2):
        assert not v.accepted and v.state.failures == 1


@settings(max_examples=60)
@given(seeds, times, st.integers(min_value=1, max_value=10**9), st.text(min_size=1, max_size=20))
def test_transaction_code_verifies_only_for_that_exact_transaction(
    seed: bytes, t: float, amount: int, payee: str
) -> None:
    tx = PaymentTransaction(amount_vnd=amount, payee=payee)
    other = PaymentTransaction(amount_vnd=amount + 1, payee=payee)
    step = algorithms.time_step(t)
    c = code(seed, step, tx.digest())
    assert domain.verify(seed, c, t, domain.TokenState(), POLICY, tx.digest()).accepted
    if c != code(seed, step, other.digest()) and c not in {code(seed, step + d) for d in (-1, 0, 1)}:
        assert not domain.verify(seed, c, t, domain.TokenState(), POLICY, other.digest()).accepted
        assert not domain.verify(seed, c, t, domain.TokenState(), POLICY).accepted  # not a plain code either


def test_document_digest_is_order_independent_and_changes_with_any_document() -> None:
    a, b, c = "a" * 64, "b" * 64, "c" * 64
    assert (
        DocumentsTransaction(document_hashes=[a, b]).digest() == DocumentsTransaction(document_hashes=[b, a]).digest()
    )
    assert (
        DocumentsTransaction(document_hashes=[a, b]).digest() != DocumentsTransaction(document_hashes=[a, c]).digest()
    )


@pytest.mark.parametrize("bad", ["", "12345", "1234567", "12a456", "١٢٣٤٥٦", " 12345"])
def test_malformed_codes_never_verify(bad: str) -> None:
    seed = domain.new_seed()
    assert not domain.verify(seed, bad, 1.7e9, domain.TokenState(), POLICY).accepted


def test_clock_hint_says_whether_to_sync_without_judging_the_code() -> None:
    assert domain.clock_hint(1000.0, 1000.0 + 40, POLICY)["time_sync_recommended"] is True
    assert domain.clock_hint(1000.0, 1000.0 + 5, POLICY)["time_sync_recommended"] is False
    assert "time_sync_recommended" not in domain.clock_hint(None, 1000.0, POLICY)


def test_key_uri_carries_algorithm_digits_and_period() -> None:
    import pyotp

    seed = domain.new_seed()
    uri = domain.key_uri(seed, "acct-1", POLICY)
    parsed = pyotp.parse_uri(uri)
    assert isinstance(parsed, pyotp.TOTP) and parsed.interval == 30 and parsed.digits == 6
    assert parsed.at(1.7e9) == domain.code_at(seed, algorithms.time_step(1.7e9), POLICY)
    assert len(seed) * 8 >= 160
