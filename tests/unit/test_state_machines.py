"""Property-based tests of the three state machines: the order (registration), the payment and the
certificate lifecycle (signing). Pure code, no I/O."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from kyso_contracts import PaymentConfirmed, PaymentFailed
from kyso_kit.errors import IllegalTransition
from kyso_payment import domain as pay
from kyso_registration import domain as reg
from kyso_signing.credentials import domain as cert

AT = datetime(2026, 3, 1, tzinfo=UTC)
Order = reg.OrderStatus


# --------------------------------------------------------------------------- the order


@st.composite
def journeys(draw: st.DrawFn) -> list[reg.OrderStatus]:
    """A path the order can really take, reported step by step by the other services."""
    path = [Order.AWAITING_PAYMENT]
    while reg.NEXT[path[-1]] and draw(st.integers(0, 9)) > 0:
        path.append(draw(st.sampled_from(sorted(reg.NEXT[path[-1]]))))
    return path


@given(journeys(), st.randoms())
def test_the_order_ends_where_its_journey_ends_whatever_order_the_events_arrive_in(
    path: list[reg.OrderStatus], rnd: object
) -> None:
    reports = path[1:]
    rnd.shuffle(reports)  # type: ignore[attr-defined]
    status = Order.AWAITING_PAYMENT
    for reported in reports:
        status = reg.advance(status, reported)
    assert status == path[-1]


@given(journeys(), st.integers(0, 20))
def test_a_report_is_idempotent_and_never_moves_the_order_back(path: list[reg.OrderStatus], i: int) -> None:
    status = Order.AWAITING_PAYMENT
    for reported in path[1:]:
        status = reg.advance(status, reported)
    earlier = path[i % len(path)]
    assert reg.advance(status, earlier) == status
    assert reg.advance(status, status) == status


@given(st.sampled_from(list(Order)), st.sampled_from(list(Order)))
def test_only_statuses_on_one_path_combine(current: reg.OrderStatus, reported: reg.OrderStatus) -> None:
    related = reported in reg.REACHABLE[current] or current in reg.REACHABLE[reported] or reported == current
    if current in reg.CLOSED:
        # a consent that got there before the closing is served; anything else reported later (a racing
        # payment) is absorbed
        assert reg.advance(current, reported) == (reported if reported in reg.SERVED else current)
    elif related:
        assert reg.advance(current, reported) in {current, reported}
    else:
        with pytest.raises(IllegalTransition):
            reg.advance(current, reported)


def test_a_paid_order_cancelled_waits_for_signing() -> None:
    # signing stops issuance: cancelled; the consent got there first: the order goes on
    assert reg.advance(Order.CANCELLATION_REQUESTED, Order.CANCELLED) == Order.CANCELLED
    assert reg.advance(Order.CANCELLATION_REQUESTED, Order.CONTRACT_SIGNED) == Order.CONTRACT_SIGNED
    assert reg.advance(Order.CANCELLATION_REQUESTED, Order.PAID) == Order.CANCELLATION_REQUESTED
    assert reg.advance(Order.CANCELLED, Order.PENDING_ACTIVATION) == Order.PENDING_ACTIVATION
    assert reg.advance(Order.PAID, Order.ISSUANCE_FAILED) == Order.ISSUANCE_FAILED
    assert reg.advance(Order.ISSUANCE_FAILED, Order.PAID) == Order.ISSUANCE_FAILED


def test_a_payment_amount_mismatch_stops_the_order() -> None:
    with pytest.raises(IllegalTransition):
        reg.advance(Order.PAYMENT_AMOUNT_MISMATCH, Order.CONTRACT_SIGNED)
    assert reg.advance(Order.PAYMENT_AMOUNT_MISMATCH, Order.PAID) == Order.PAYMENT_AMOUNT_MISMATCH
    assert set(reg.STATUS_VI) == set(Order)


# --------------------------------------------------------------------------- the payment


class PaymentMachine(RuleBasedStateMachine):
    """Drive a payment with notifications and retries; the model says what must happen."""

    def __init__(self) -> None:
        super().__init__()
        self.payment = pay.Payment("p1", "o1", "a1", 800_000, pay.PaymentStatus.PENDING, "ref1")
        self.confirmed = 0

    def _with(self, status: pay.PaymentStatus) -> None:
        p = self.payment
        self.payment = pay.Payment(p.payment_id, p.order_id, p.account_id, p.amount_vnd, status, p.txn_ref)

    @rule(success=st.booleans(), code=st.sampled_from(["00", "24", "51", "99"]))
    def notify(self, success: bool, code: str) -> None:
        result = pay.GatewayResult("vnpay", "ref1", 800_000, success, code if not success else "00", "1")
        if self.payment.status != pay.PaymentStatus.PENDING:
            with pytest.raises(IllegalTransition):
                pay.settle(self.payment, result, AT)
            return
        status, event = pay.settle(self.payment, result, AT)
        if success:
            assert status == pay.PaymentStatus.CONFIRMED and isinstance(event, PaymentConfirmed)
            self.confirmed += 1
        else:
            assert status == pay.PaymentStatus.FAILED and isinstance(event, PaymentFailed)
            assert event.reason_code == code
        assert event.amount_vnd == 800_000 and event.order_id == "o1"
        self._with(status)

    @rule()
    def retry(self) -> None:
        if self.payment.status != pay.PaymentStatus.FAILED:
            with pytest.raises(IllegalTransition):
                pay.retry(self.payment)
            return
        self._with(pay.retry(self.payment))

    @precondition(lambda self: self.payment.status == pay.PaymentStatus.PENDING)
    @rule(amount=st.integers(1, 10**9))
    def wrong_amount_never_settles(self, amount: int) -> None:
        if amount != self.payment.amount_vnd:
            with pytest.raises(ValueError):
                pay.settle(self.payment, pay.GatewayResult("vnpay", "ref1", amount, True, "00", "1"), AT)

    @invariant()
    def confirmed_at_most_once_and_final(self) -> None:
        assert self.confirmed <= 1
        if self.confirmed:
            assert self.payment.status == pay.PaymentStatus.CONFIRMED


TestPaymentMachine = PaymentMachine.TestCase
TestPaymentMachine.settings = settings(max_examples=60, stateful_step_count=15, deadline=None)


# --------------------------------------------------------------------------- the certificate

ACTIONS = sorted({a for _, a in cert.TRANSITIONS})
Cert = cert.CertificateStatus


@given(st.lists(st.tuples(st.sampled_from(ACTIONS), st.booleans()), max_size=12))
def test_the_certificate_only_takes_allowed_transitions(steps: list[tuple[str, bool]]) -> None:
    status = Cert.COLLECTING
    for action, amounts_agree in steps:
        allowed = cert.TRANSITIONS.get((status, action))
        if not allowed:
            with pytest.raises(IllegalTransition):
                cert.next_status(status, action, None if action != "prepare" else Cert.AWAITING_CONSENT)
            continue
        if action == "prepare":
            status = cert.prepare(status, paid_vnd=800_000, order_vnd=800_000 if amounts_agree else 900_000)
            assert status == (Cert.AWAITING_CONSENT if amounts_agree else Cert.AMOUNT_MISMATCH)
        else:
            status = cert.next_status(status, action)
        assert status in allowed


def test_the_happy_path_reaches_active_and_only_the_lifecycle_leaves_it() -> None:
    status = cert.prepare(Cert.COLLECTING, paid_vnd=1, order_vnd=1)
    status = cert.next_status(status, "reject_consent")
    for action in ("consent", "issue", "activate"):
        status = cert.next_status(status, action)
    assert status == Cert.ACTIVE
    for action in ACTIONS:
        if action in ("suspend", "revoke", "expire"):
            continue
        with pytest.raises(IllegalTransition):
            cert.next_status(status, action, Cert.AWAITING_CONSENT if action == "prepare" else None)
    assert cert.next_status(cert.next_status(status, "suspend"), "resume") == Cert.ACTIVE


@pytest.mark.parametrize("final", [Cert.REVOKED, Cert.EXPIRED])
def test_revoked_and_expired_are_final(final: cert.CertificateStatus) -> None:
    for action in ACTIONS:
        with pytest.raises(IllegalTransition):
            cert.next_status(final, action, Cert.AWAITING_CONSENT if action == "prepare" else None)


@given(st.text(max_size=8), st.text(max_size=8), st.sampled_from(["a" * 64, "b" * 64, None]))
def test_consent_counts_only_for_the_owner_and_this_contract(account: str, owner: str, binding: str | None) -> None:
    problem = cert.consent_problem(account_id=account, owner=owner, binding=binding, contract_sha256="a" * 64)
    if account != owner:
        assert problem == "other_account"
    elif binding != "a" * 64:
        assert problem == "bound_to_other_document"
    else:
        assert problem is None


def test_each_certificate_transition_causes_exactly_the_events_it_declares() -> None:
    from kyso_signing.credentials.domain import (
        CAUSES,
        ISSUED,
        Ref,
        Revocation,
        Signed,
        activated,
        consent_rejected,
        expired,
        issued,
        prepared,
        resumed,
        revoked,
        suspended,
    )

    ref = Ref("c1", "o1", "a1")
    made: dict[tuple[cert.CertificateStatus, str, cert.CertificateStatus], list[type[object]]] = {}
    for paid in (800_000, 700_000):
        new, events = prepared(Cert.COLLECTING, ref, paid_vnd=paid, order_vnd=800_000, payment_id="p1", at=AT)
        made[(Cert.COLLECTING, "prepare", new)] = [type(e) for e in events]
    new, rejected = consent_rejected(
        Cert.AWAITING_CONSENT, ref, contract_id="k1", challenge_id="ch", reason="other_account", at=AT
    )
    made[(Cert.AWAITING_CONSENT, "reject_consent", new)] = [type(rejected)]
    made[(Cert.AWAITING_CONSENT, "consent", cert.next_status(Cert.AWAITING_CONSENT, "consent"))] = []
    signed = Signed("k1", "a" * 64, "ch", "sig", AT, "1f", "CN=x", AT, AT, "pem")
    new, *both = issued(Cert.ISSUING, ref, signed)
    made[(Cert.ISSUING, "issue", new)] = [type(e) for e in both]
    new, act = activated(
        Cert.PENDING_ACTIVATION, ref, serial_number="1f", record_sha256="a" * 64, signature_b64="s", at=AT
    )
    made[(Cert.PENDING_ACTIVATION, "activate", new)] = [type(act)]
    new, sus = suspended(Cert.ACTIVE, ref, serial_number="1f", at=AT, by="operator")
    made[(Cert.ACTIVE, "suspend", new)] = [type(sus)]
    new, res = resumed(Cert.SUSPENDED, ref, serial_number="1f", at=AT, by="operator")
    made[(Cert.SUSPENDED, "resume", new)] = [type(res)]
    for s in ISSUED:
        new, rev = revoked(s, ref, Revocation("1f", "keyCompromise", AT, "subscriber"))
        made[(s, "revoke", new)] = [type(rev)]
        new, exp = expired(s, ref, serial_number="1f", at=AT)
        made[(s, "expire", new)] = [type(exp)]
    for s in cert.CANCELLABLE:
        new, stop = cert.stopped(s, ref, "cancelled", AT)
        made[(s, "cancel", new)] = [type(stop)]
    new, stop = cert.stopped(Cert.ISSUING, ref, "issuance_failed", AT)
    made[(Cert.ISSUING, "fail", new)] = [type(stop)]
    assert made == {k: list(v) for k, v in CAUSES.items()}
    assert {(s, a) for s, a, _ in CAUSES} == set(cert.TRANSITIONS)
    with pytest.raises(IllegalTransition):
        issued(Cert.AWAITING_CONSENT, ref, signed)  # nothing is signed before the serial is reserved


def test_only_a_suspended_order_resumes() -> None:
    assert reg.resume(Order.SUSPENDED) == Order.ACTIVE
    for other in set(Order) - {Order.SUSPENDED}:
        with pytest.raises(IllegalTransition):
            reg.resume(other)


# --------------------------------------------------------------------------- otp: SMS challenges and SmartOTP tokens


def test_otp_tables_name_only_their_own_statuses_and_every_status_is_reached_or_final() -> None:
    from kyso_otp import domain as otp

    for table, enum, first in (
        (otp.CHALLENGE_TRANSITIONS, otp.ChallengeStatus, otp.ChallengeStatus.PENDING),
        (otp.TOKEN_TRANSITIONS, otp.TokenStatus, otp.TokenStatus.AWAITING_DEVICE),
    ):
        for (source, _action), targets in table.items():
            assert isinstance(source, enum) and targets and all(isinstance(t, enum) for t in targets)
        reached = {first} | {t for targets in table.values() for t in targets}
        assert reached == set(enum), "a status nothing leads to is dead code"


def test_the_filters_derived_from_the_otp_tables() -> None:
    from kyso_kit.machines import sources, step
    from kyso_otp import domain as otp

    assert otp.LIVE_TOKEN == ["active", "pending_first_code"]
    assert sources(otp.TOKEN_TRANSITIONS, "revoke") == ["active", "pending_first_code"]
    assert sources(otp.TOKEN_TRANSITIONS, "lock_by_operator") == ["active", "awaiting_device", "pending_first_code"]
    assert sources(otp.CHALLENGE_TRANSITIONS, "verify") == ["pending"]
    assert sources(otp.CHALLENGE_TRANSITIONS, "consume") == ["verified"]
    T = otp.TokenStatus
    assert step(otp.TOKEN_TRANSITIONS, "t", T.PENDING_FIRST_CODE, "use") == T.ACTIVE
    assert step(otp.TOKEN_TRANSITIONS, "t", T.AWAITING_DEVICE, "fail_activation", T.VOIDED) == T.VOIDED
    for final in (T.REVOKED, T.VOIDED, T.SUPERSEDED):
        for action in ("use", "activate", "revoke", "fail"):
            with pytest.raises(IllegalTransition):
                step(otp.TOKEN_TRANSITIONS, "t", final, action)
    with pytest.raises(IllegalTransition):  # two targets: the caller must say which
        step(otp.TOKEN_TRANSITIONS, "t", T.AWAITING_DEVICE, "fail_activation")


def test_an_order_that_stopped_waiting_for_payment_never_waits_again() -> None:
    """What lets registration take over a stale open-order marker without re-checking (orders.py)."""
    for status in Order:
        if status not in reg.OPEN:
            assert not reg.REACHABLE[status] & reg.OPEN, status
            for reported in reg.OPEN:
                try:
                    assert reg.advance(status, reported) not in reg.OPEN
                except IllegalTransition:
                    pass
