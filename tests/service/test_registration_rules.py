"""Registration rules: the VNeID hand-over, accounts and login lock-out, orders and the status view."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from kyso_client import vneid
from kyso_contracts import (
    AccountCreated,
    CertActivated,
    CloudEvent,
    OrderPlaced,
    OtpPurpose,
    PaymentConfirmed,
    PaymentFailed,
    SmsOtpVerified,
)
from kyso_kit.auth import Principal, TokenVerifier
from kyso_kit.clock import FakeClock
from kyso_kit.errors import Conflict, Forbidden, IllegalTransition, Invalid, Rejected, Unauthenticated
from kyso_kit.routing import deliver
from kyso_kit.store import MemoryStore
from kyso_registration.core import build_core
from kyso_registration.handlers import HANDLERS
from kyso_registration.settings import RegistrationSettings

from .conftest import delivered

PASSWORD = "Ky-so an toan 2025!"
PHONE = "+84912345678"


class Registration:
    """The service's core as bootstrap builds it (:func:`build_core`), on the fake store and clock."""

    def __init__(self, store: MemoryStore, clock: FakeClock) -> None:
        self.clock = clock
        self.core = build_core(store, clock, RegistrationSettings(login_max_failures=3, login_lock_seconds=900))
        self.tokens = self.core.tokens
        self.identities = self.core.identities
        self.accounts = self.core.accounts
        self.orders = self.core.orders
        self.status = self.core.status
        self.organisations = self.core.organisations
        self.vneid_status = self.core.vneid_status

    async def start(self) -> None:
        await self.core.start()

    async def deliver(self, event: CloudEvent[Any]) -> bool:
        """As the consumer would: through the service's event → handler table."""
        return await deliver(HANDLERS, self.core, event)

    def identity(self, **changes: Any) -> str:
        ident = vneid.identity(vneid.random_citizen_id(), "Lê Thị Hoa", "1992-05-06")
        ident["issued_at"] = self.clock.now().isoformat()
        ident.update(changes)
        return vneid.sign(ident)

    async def citizen(self, citizen_id: str | None = None, phone: str = PHONE) -> Principal:
        reg = await self.identities.accept(self.identity(**({"citizen_id": citizen_id} if citizen_id else {})))
        await self.identities.confirm(reg.registration_id)
        await self.deliver(
            delivered(
                SmsOtpVerified(
                    challenge_id="ch-1",
                    purpose=OtpPurpose.PHONE_VERIFICATION,
                    subject=reg.registration_id,
                    phone=phone,
                    verified_at=self.clock.now(),
                ),
                self.clock,
            )
        )
        session = await self.accounts.create(reg.registration_id, phone, "hoa@example.vn", PASSWORD)
        return TokenVerifier(self.tokens.jwks(), self.clock).verify(session.access_token)


@pytest.fixture
async def registration(store: MemoryStore, clock: FakeClock) -> Registration:
    r = Registration(store, clock)
    await r.start()
    return r


async def test_vneid_assertions_must_be_signed_level_2_fresh_and_used_once(
    registration: Registration, clock: FakeClock
) -> None:
    ids = registration.identities
    assertion = registration.identity()
    with pytest.raises(Unauthenticated):
        await ids.accept(vneid.tampered(assertion, full_name="Someone Else"))
    with pytest.raises(Forbidden):
        await ids.accept(registration.identity(eid_level=1))
    with pytest.raises(Rejected):
        await ids.accept(registration.identity(issued_at=(clock.now() - timedelta(minutes=11)).isoformat()))
    with pytest.raises(Invalid):
        await ids.accept(registration.identity(citizen_id="12"))
    await ids.accept(assertion)
    with pytest.raises(Conflict):
        await ids.accept(assertion)


async def test_an_account_needs_a_confirmed_registration_a_verified_phone_and_a_strong_password(
    registration: Registration, store: MemoryStore
) -> None:
    reg = await registration.identities.accept(registration.identity())
    with pytest.raises(Conflict, match="registration_not_confirmed"):
        await registration.accounts.create(reg.registration_id, PHONE, "h@example.vn", PASSWORD)
    await registration.identities.confirm(reg.registration_id)
    with pytest.raises(Conflict, match="phone_not_verified"):
        await registration.accounts.create(reg.registration_id, PHONE, "h@example.vn", PASSWORD)
    who = await registration.citizen()
    assert who.has("subscriber") and store.of_type(AccountCreated)[-1].data.account_id == who.account_id


async def test_login_locks_after_consecutive_failures_and_unlocks_when_the_time_is_up(
    registration: Registration, clock: FakeClock
) -> None:
    await registration.citizen()
    accounts = registration.accounts
    for _ in range(3):
        with pytest.raises(Unauthenticated):
            await accounts.login(PHONE, "wrong password!!")
    with pytest.raises(Unauthenticated):  # locked: the right password answers like a wrong one
        await accounts.login(PHONE, PASSWORD)
    clock.advance(seconds=899)
    with pytest.raises(Unauthenticated):
        await accounts.login(PHONE, PASSWORD)
    clock.advance(seconds=2)
    assert (await accounts.login(PHONE, PASSWORD)).roles == ["subscriber"]


GUESSER, OWNER, NAT = "198.51.100.1", "203.0.113.5", "192.0.2.77"


async def test_a_password_guesser_locks_out_its_own_address_not_the_account(
    registration: Registration, clock: FakeClock
) -> None:
    await registration.citizen()
    accounts = registration.accounts
    clock.advance(minutes=50)  # 02:50: the guesses straddle the clock hour
    for _ in range(3):
        with pytest.raises(Unauthenticated):
            await accounts.login(PHONE, "wrong password!!", GUESSER)
    with pytest.raises(Unauthenticated):  # the guessing address: even the right password answers like wrong
        await accounts.login(PHONE, PASSWORD, GUESSER)
    assert (await accounts.login(PHONE, PASSWORD, OWNER)).roles == ["subscriber"]  # the owner: at once
    clock.advance(minutes=14)  # 03:04, a new clock hour: still inside the 15-minute window
    with pytest.raises(Unauthenticated):
        await accounts.login(PHONE, PASSWORD, GUESSER)
    clock.advance(minutes=1, seconds=1)
    assert await accounts.login(PHONE, PASSWORD, GUESSER)


async def test_an_address_spraying_accounts_still_lets_a_citizen_behind_it_sign_in(
    registration: Registration,
) -> None:
    await registration.citizen(phone="+84911111111")
    await registration.citizen(phone="+84922222222")
    accounts = registration.accounts
    accounts.per_address = 4
    for phone in ("+84911111111", "+84933333333", "+84944444444", "+84955555555"):
        with pytest.raises(Unauthenticated):  # one wrong guess each: unknown phones count too
            await accounts.login(phone, "wrong password!!", NAT)
    # The address is over its bound: an account it got wrong is no longer tried from there...
    with pytest.raises(Unauthenticated):
        await accounts.login("+84911111111", PASSWORD, NAT)
    assert await accounts.limits.count("login-address", NAT, 3600) == 4  # ...and the refusal was not hashed
    # ...while a citizen behind the same address, whose account it never guessed, signs in at once.
    assert await accounts.login("+84922222222", PASSWORD, NAT)
    assert await accounts.login("+84911111111", PASSWORD, OWNER)


async def test_an_account_guessed_from_everywhere_still_opens_from_its_usual_address(
    registration: Registration,
) -> None:
    await registration.citizen()
    accounts = registration.accounts
    accounts.per_account = 4
    await accounts.login(PHONE, PASSWORD, OWNER)  # the owner's usual address
    for i in range(4):
        with pytest.raises(Unauthenticated):
            await accounts.login(PHONE, "wrong password!!", f"198.51.100.{10 + i}")
    with pytest.raises(Unauthenticated):  # a new address may not try it while it is guessed from everywhere
        await accounts.login(PHONE, PASSWORD, "198.51.100.99")
    assert await accounts.login(PHONE, PASSWORD, OWNER)
    # IPv6: one /64 is one address for these bounds (a host may use any address of its /64).
    await registration.citizen(phone="+84966666666")
    for i in range(3):
        with pytest.raises(Unauthenticated):
            await accounts.login("+84966666666", "wrong password!!", f"2001:db8:1:2::{i + 1}")
    with pytest.raises(Unauthenticated):
        await accounts.login("+84966666666", PASSWORD, "2001:db8:1:2:ffff::9")
    assert await accounts.login("+84966666666", PASSWORD, "2001:db8:1:3::1")


async def test_operator_accounts_carry_their_roles_into_the_token(registration: Registration) -> None:
    await registration.accounts.create_operator("+84901234567", PASSWORD, ["operator", "auditor"])
    session = await registration.accounts.login("+84901234567", PASSWORD)
    assert session.roles == ["auditor", "operator"]
    with pytest.raises(Invalid):
        await registration.accounts.create_operator("+84901234568", "short", ["operator"])


async def test_orders_need_a_known_package_and_only_their_owner_sees_them(
    registration: Registration, store: MemoryStore
) -> None:
    who = await registration.citizen()
    with pytest.raises(Invalid):
        await registration.orders.place(who, "PERSONAL_4Y")
    order = await registration.orders.place(who, "PERSONAL_3Y")
    assert order.status == "awaiting_payment" and order.amount_vnd == 1_900_000
    [placed] = store.of_type(OrderPlaced)
    assert placed.data.validity_years == 3
    with pytest.raises(Forbidden):
        await registration.orders.view(Principal("intruder"), order.order_id)


async def test_the_status_follows_events_in_any_order_each_applied_once(
    registration: Registration, clock: FakeClock
) -> None:
    who = await registration.citizen()
    order = await registration.orders.place(who, "PERSONAL_1Y")
    common = {"order_id": order.order_id, "account_id": who.account_id}
    clock.advance(minutes=1)
    failed = delivered(
        PaymentFailed(
            payment_id="p1", amount_vnd=800_000, reason_code="24", reason="x", failed_at=clock.now(), **common
        ),
        clock,
    )
    clock.advance(minutes=1)
    paid = delivered(
        PaymentConfirmed(
            payment_id="p1", amount_vnd=800_000, provider="vnpay", provider_transaction_no="1",
            confirmed_at=clock.now(), **common,
        ),
        clock,
    )  # fmt: skip
    clock.advance(minutes=5)
    activated = delivered(
        CertActivated(
            certificate_id="c1",
            serial_number="abc",
            acceptance_record_sha256="a" * 64,
            acceptance_signature_b64="sig",
            activated_at=clock.now(),
            **common,
        ),
        clock,
    )
    for event in (activated, failed, paid, paid):  # activation first, from another topic; paid twice
        assert await registration.deliver(event)
    view = await registration.orders.view(who, order.order_id)
    assert view.status == "active" and view.status_vi == "Đang hoạt động"
    # the timeline shows when things happened, not when the events arrived
    assert [t.event for t in view.timeline] == ["order_placed", "payment_failed", "paid", "active"]


async def test_an_event_no_path_allows_is_an_error_not_a_silent_write(
    registration: Registration, clock: FakeClock
) -> None:
    from kyso_contracts import ContractSigned, PaymentAmountMismatch

    who = await registration.citizen()
    order = await registration.orders.place(who, "PERSONAL_1Y")
    common = {"order_id": order.order_id, "account_id": who.account_id, "certificate_id": "c1"}
    await registration.deliver(
        delivered(
            PaymentAmountMismatch(payment_id="p1", paid_vnd=1, order_vnd=800_000, detected_at=clock.now(), **common),
            clock,
        )
    )
    signed = ContractSigned(
        contract_id="k1", contract_sha256="a" * 64, consent_challenge_id="ch", provider_signature_b64="s",
        signed_at=clock.now(), **common,
    )  # fmt: skip
    with pytest.raises(IllegalTransition):
        await registration.deliver(delivered(signed, clock))
    assert (await registration.orders.view(who, order.order_id)).status == "payment_amount_mismatch"


async def test_a_waiting_reader_sees_the_change_at_once(registration: Registration, clock: FakeClock) -> None:
    import asyncio
    import time

    who = await registration.citizen()
    order = await registration.orders.place(who, "PERSONAL_1Y")
    waiting = asyncio.create_task(registration.orders.view_after(who, order.order_id, "awaiting_payment", 10))
    await asyncio.sleep(0.05)
    assert not waiting.done()
    started = time.perf_counter()
    paid = PaymentConfirmed(
        payment_id="p1", order_id=order.order_id, account_id=who.account_id, amount_vnd=800_000, provider="vnpay",
        provider_transaction_no="1", confirmed_at=clock.now(),
    )  # fmt: skip
    await registration.deliver(delivered(paid, clock))
    view = await waiting
    assert view.status == "paid" and time.perf_counter() - started < 0.5
    quick = await registration.orders.view_after(who, order.order_id, "paid", 0.05)  # nothing changes: times out
    assert quick.status == "paid"


async def test_one_open_order_per_package_cancel_before_payment_and_unpaid_orders_expire(
    registration: Registration, store: MemoryStore, clock: FakeClock
) -> None:
    from kyso_contracts import OrderCancelled, OrderExpired, PaymentConfirmed
    from kyso_kit.errors import Conflict

    who = await registration.citizen()
    first = await registration.orders.place(who, "PERSONAL_1Y")
    with pytest.raises(Conflict) as open_one:
        await registration.orders.place(who, "PERSONAL_1Y")
    assert open_one.value.code == "open_order_exists" and open_one.value.details["order_id"] == first.order_id
    other = await registration.orders.place(who, "PERSONAL_2Y")  # another package: its own order
    with pytest.raises(Forbidden):
        await registration.orders.cancel(Principal("intruder"), first.order_id)
    cancelled = await registration.orders.cancel(who, first.order_id)
    assert cancelled.status == "cancelled" and cancelled.status_vi
    with pytest.raises(Conflict):
        await registration.orders.cancel(who, first.order_id)
    [event] = store.of_type(OrderCancelled)
    assert (event.data.order_id, event.data.amount_vnd) == (first.order_id, 800_000)
    # a payment that raced the cancellation is absorbed: the order stays cancelled (payment refunds it)
    paid = PaymentConfirmed(
        payment_id="p1", order_id=first.order_id, account_id=who.account_id, amount_vnd=800_000, provider="vnpay",
        provider_transaction_no="1", confirmed_at=clock.now(),
    )  # fmt: skip
    await registration.deliver(delivered(paid, clock))
    assert (await registration.orders.view(who, first.order_id)).status == "cancelled"
    again = await registration.orders.place(who, "PERSONAL_1Y")  # no open order of that package now
    assert await registration.orders.expire_unpaid() == 0
    clock.advance(hours=24, seconds=1)
    assert await registration.orders.expire_unpaid() == 2  # the 2-year and the new 1-year order
    assert await registration.orders.expire_unpaid() == 0
    assert {e.data.order_id for e in store.of_type(OrderExpired)} == {other.order_id, again.order_id}
    assert (await registration.orders.view(who, again.order_id)).status == "order_expired"


async def test_a_paid_order_is_cancelled_when_signing_stops_issuance_and_goes_on_when_consent_won(
    registration: Registration, store: MemoryStore, clock: FakeClock
) -> None:
    from kyso_contracts import ContractSigned, IssuanceStopped, OrderCancelled, PaymentConfirmed

    who = await registration.citizen()
    orders = []
    for package in ("PERSONAL_1Y", "PERSONAL_2Y", "PERSONAL_3Y"):
        o = await registration.orders.place(who, package)
        paid = PaymentConfirmed(
            payment_id=f"p-{package}", order_id=o.order_id, account_id=who.account_id, amount_vnd=o.amount_vnd,
            provider="vnpay", provider_transaction_no="1", confirmed_at=clock.now(),
        )  # fmt: skip
        await registration.deliver(delivered(paid, clock))
        orders.append(o.order_id)
    stopped, served, failed = orders
    asked = await registration.orders.cancel(who, stopped)
    assert asked.status == "cancellation_requested"
    [cancel] = store.of_type(OrderCancelled)
    assert cancel.data.after_payment
    stop = IssuanceStopped(
        order_id=stopped, account_id=who.account_id, certificate_id="c1", reason="cancelled", stopped_at=clock.now()
    )
    await registration.deliver(delivered(stop, clock))
    assert (await registration.orders.view(who, stopped)).status == "cancelled"

    # the consent got there first: signing serves the order, and the order shows it
    assert (await registration.orders.cancel(who, served)).status == "cancellation_requested"
    signed = ContractSigned(
        order_id=served, account_id=who.account_id, certificate_id="c2", contract_id="k2", contract_sha256="a" * 64,
        consent_challenge_id="ch", provider_signature_b64="c2ln", signed_at=clock.now(),
    )  # fmt: skip
    await registration.deliver(delivered(signed, clock))
    assert (await registration.orders.view(who, served)).status == "contract_signed"
    with pytest.raises(Conflict):
        await registration.orders.cancel(who, served)  # consented: no longer cancellable

    failure = stop.model_copy(update={"order_id": failed, "reason": "issuance_failed"})
    await registration.deliver(delivered(failure, clock))
    view = await registration.orders.view(who, failed)
    assert view.status == "issuance_failed" and "hoàn tiền" in view.status_vi


async def test_concurrent_orders_for_one_package_give_one_open_order(
    registration: Registration, store: MemoryStore
) -> None:
    import asyncio

    from kyso_kit.errors import Conflict

    who = await registration.citizen()
    results = await asyncio.gather(
        *(registration.orders.place(who, "PERSONAL_1Y") for _ in range(6)), return_exceptions=True
    )
    placed = [r for r in results if not isinstance(r, Exception)]
    refused = [r for r in results if isinstance(r, Conflict)]
    assert len(placed) == 1 and len(refused) == 5 and len(store.of_type(OrderPlaced)) == 1
    # a marker left by a crash before its order was written does not block the next order
    await registration.orders.open_orders.update(
        {"_id": f"{who.account_id}:PERSONAL_2Y"}, {"$set": {"order_id": "never-written"}},
        upsert_with={"_id": f"{who.account_id}:PERSONAL_2Y"},
    )  # fmt: skip
    assert (await registration.orders.place(who, "PERSONAL_2Y")).status == "awaiting_payment"


async def test_vneid_asks_for_a_citizens_status_with_a_fresh_signed_query(
    registration: Registration, clock: FakeClock
) -> None:
    who = await registration.citizen()
    acct = await registration.accounts.view(who, who.account_id)
    citizen_id = (await registration.identities.get(acct.registration_id or ""))["identity"]["citizen_id"]
    placed = await registration.orders.place(who, "PERSONAL_1Y")
    closed = await registration.orders.place(who, "PERSONAL_2Y")
    await registration.orders.cancel(who, closed.order_id)

    def query(**changes: Any) -> str:
        q = vneid.status_query(citizen_id)
        q["issued_at"] = clock.now().isoformat()
        return vneid.sign(q | changes)

    shown = await registration.vneid_status.answer(query())
    assert [(c.order_id, c.status) for c in shown.certificates] == [(placed.order_id, "awaiting_payment")]
    assert (await registration.vneid_status.answer(query(citizen_id=vneid.random_citizen_id()))).certificates == []
    with pytest.raises(Unauthenticated):
        await registration.vneid_status.answer(vneid.tampered(query(), citizen_id=vneid.random_citizen_id()))
    with pytest.raises(Rejected):
        await registration.vneid_status.answer(query(issued_at=(clock.now() - timedelta(minutes=11)).isoformat()))
    with pytest.raises(Invalid):  # an identity hand-over is not a status query
        await registration.vneid_status.answer(registration.identity())
    with pytest.raises(Invalid):
        await registration.vneid_status.answer(query(query="everything"))


async def test_a_placement_that_loses_the_takeover_of_a_stale_slot_is_refused_not_retried(
    registration: Registration, store: MemoryStore
) -> None:
    """Two placements find the same stale marker; the one whose takeover write loses is refused, even
    though the winner has not written its order yet (retrying would take the slot from it: two open orders)."""
    from kyso_kit.errors import Conflict

    who = await registration.citizen()
    slots = registration.orders.open_orders
    key = f"{who.account_id}:PERSONAL_2Y"
    await slots.insert({"_id": key, "order_id": "crashed-before-its-order"})
    real_update = slots.update

    async def rival_first(flt: Any, upd: Any, **kw: Any) -> bool:
        slots.update = real_update  # type: ignore[method-assign]
        assert await real_update(flt, {"$set": {"order_id": "rival-in-progress"}})  # the rival's takeover
        return await real_update(flt, upd, **kw)

    slots.update = rival_first  # type: ignore[method-assign]
    with pytest.raises(Conflict) as refused:
        await registration.orders.place(who, "PERSONAL_2Y")
    assert refused.value.code == "open_order_exists" and refused.value.details == {"order_id": "rival-in-progress"}
    assert (await slots.get(key)) == {"_id": key, "order_id": "rival-in-progress"}
    assert not store.of_type(OrderPlaced)
