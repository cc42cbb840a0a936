"""HTTP entry points of the registration service."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from kyso_contracts.types import Id, Phone
from kyso_kit.auth import Principal, TokenIssuer, TokenVerifier, bearer_dependency
from kyso_kit.client_address import ClientAddresses
from kyso_kit.openapi import errors

from .accounts import Accounts
from .identity import Identities
from .orders import Orders
from .organisations import Organisations
from .schemas import (
    AccountRequest,
    AccountView,
    Jwks,
    LoginRequest,
    OrderRequest,
    OrderView,
    OrganisationRegistrationList,
    OrganisationRegistrationRequest,
    OrganisationRegistrationView,
    PackageList,
    RegistrationView,
    SessionView,
    VneidRegistration,
    VneidStatusRequest,
    VneidStatusView,
)
from .views import packages
from .vneid_status import VneidStatus


def router(
    identities: Identities,
    accounts: Accounts,
    orders: Orders,
    organisations: Organisations,
    vneid_status: VneidStatus,
    verifier: TokenVerifier,
    issuer: TokenIssuer,
    addresses: ClientAddresses,
) -> APIRouter:
    r = APIRouter()
    account = bearer_dependency(verifier)
    client_address = addresses.dependency()

    @r.get("/.well-known/jwks.json", tags=["account"])
    async def jwks() -> Jwks:
        """The public keys access tokens are signed with (RFC 7517); every service checks tokens against them."""
        return Jwks(**issuer.jwks())

    @r.post("/v1/vneid/registrations", status_code=201, tags=["vneid"], responses=errors(400, 401, 403, 409, 422))
    async def vneid_registration(body: VneidRegistration) -> RegistrationView:
        """Step 1: VNeID hands over a signed level-2 identity (a JWS whose payload is a VneidIdentity)."""
        return await identities.accept(body.assertion)

    @r.post("/v1/vneid/status-queries", tags=["vneid"], responses=errors(400, 401, 422))
    async def vneid_status_query(body: VneidStatusRequest) -> VneidStatusView:
        """VNeID asks what to show a citizen: their certificates and orders (a signed VneidStatusQuery)."""
        return await vneid_status.answer(body.assertion)

    @r.get("/v1/registrations/{registration_id}", tags=["registration"], responses=errors(404, 422))
    async def get_registration(
        registration_id: Id,
        phone: Annotated[Phone | None, Query(description="Long-poll: answer once this phone is verified")] = None,
        wait: Annotated[float, Query(ge=0, le=30, description="Long-poll: wait at most this many seconds")] = 10,
    ) -> RegistrationView:
        return await identities.view(registration_id, phone=phone, wait_seconds=wait)

    @r.post("/v1/registrations/{registration_id}/confirm", tags=["registration"], responses=errors(404, 409, 422))
    async def confirm(registration_id: Id) -> RegistrationView:
        """Step 2: the citizen confirms the data VNeID sent."""
        return await identities.confirm(registration_id)

    @r.post(
        "/v1/registrations/{registration_id}/account",
        status_code=201,
        tags=["registration"],
        responses=errors(404, 409, 422),
    )
    async def create_account(registration_id: Id, body: AccountRequest) -> SessionView:
        """Step 3: phone (verified by SMS OTP first), email and password."""
        return await accounts.create(registration_id, body.phone, body.email, body.password)

    @r.post("/v1/sessions", tags=["account"], responses=errors(401, 422))
    async def login(body: LoginRequest, client: str = Depends(client_address)) -> SessionView:
        """Sign in; wrong and locked answer alike. Guessing locks out the guessing address (five wrong
        passwords in 15 minutes for this account), not the account: its owner signs in from elsewhere."""
        return await accounts.login(body.phone, body.password, client)

    @r.get("/v1/packages", tags=["orders"])
    async def list_packages() -> PackageList:
        return packages()

    @r.post("/v1/orders", status_code=201, tags=["orders"], responses=errors(401, 404, 409, 422))
    async def place_order(body: OrderRequest, who: Principal = Depends(account)) -> OrderView:
        """Step 4: choose a package (and a key algorithm); payment is due next. A renewal names the
        certificate it renews."""
        return await orders.place(who, body.package_code, body.key_algorithm, body.renews_certificate_id)

    @r.post("/v1/orders/{order_id}/cancellation", tags=["orders"], responses=errors(401, 403, 404, 409, 422))
    async def cancel_order(order_id: Id, who: Principal = Depends(account)) -> OrderView:
        """Cancel an order (``OrderCancelled``): one that waits for payment closes at once; a paid one whose
        contract is not consented yet becomes ``cancellation_requested`` until signing stops issuance (then
        ``cancelled``, and the payment is refunded). 409 once the contract is signed or the order closed."""
        return await orders.cancel(who, order_id)

    @r.get("/v1/orders/{order_id}", tags=["orders"], responses=errors(401, 403, 404, 422))
    async def get_order(
        order_id: Id,
        who: Principal = Depends(account),
        status_not: Annotated[
            str | None,
            Query(max_length=64, description="Long-poll: answer as soon as the status is no longer this one"),
        ] = None,
        wait: Annotated[float, Query(ge=0, le=30, description="Long-poll: wait at most this many seconds")] = 25,
    ) -> OrderView:
        """Steps 5–6: the order's status follows payment, contract and certificate events.

        With ``status_not``, the answer comes as soon as the status changes (or after ``wait``)."""
        if status_not is None:
            return await orders.view(who, order_id)
        return await orders.view_after(who, order_id, status_not, wait)

    @r.post(
        "/v1/organisation-registrations",
        status_code=201,
        tags=["organisations"],
        responses=errors(401, 403, 422),
    )
    async def open_organisation_registration(
        body: OrganisationRegistrationRequest, who: Principal = Depends(account)
    ) -> OrganisationRegistrationView:
        """A sales agent opens an organisation registration (``OrganisationRegistrationOpened``); the
        authorised person is invited by SMS to continue in the app."""
        return await organisations.open(who, body)

    @r.get("/v1/organisation-registrations", tags=["organisations"], responses=errors(401, 422))
    async def list_organisation_registrations(
        who: Principal = Depends(account),
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
    ) -> OrganisationRegistrationList:
        """A sales agent's own registrations; the caller's own as authorised person; all for an operator."""
        return await organisations.list(who, limit)

    @r.get(
        "/v1/organisation-registrations/{registration_id}",
        tags=["organisations"],
        responses=errors(401, 403, 404, 422),
    )
    async def get_organisation_registration(
        registration_id: Id, who: Principal = Depends(account)
    ) -> OrganisationRegistrationView:
        return await organisations.view(who, registration_id)

    @r.post(
        "/v1/organisation-registrations/{registration_id}/confirmation",
        tags=["organisations"],
        responses=errors(401, 403, 404, 409, 422),
    )
    async def confirm_organisation_registration(
        registration_id: Id, who: Principal = Depends(account)
    ) -> OrganisationRegistrationView:
        """The authorised person (their VNeID identity carries the invited citizen ID) confirms the data;
        the orders are placed in their name (``OrganisationRegistrationConfirmed``)."""
        return await organisations.confirm(who, registration_id)

    @r.post(
        "/v1/organisation-registrations/{registration_id}/withdrawal",
        tags=["organisations"],
        responses=errors(401, 403, 404, 409, 422),
    )
    async def withdraw_organisation_registration(
        registration_id: Id, who: Principal = Depends(account)
    ) -> OrganisationRegistrationView:
        """Its sales agent (or an operator) withdraws a registration not yet confirmed."""
        return await organisations.withdraw(who, registration_id)

    @r.get("/v1/accounts/{account_id}", tags=["account"], responses=errors(401, 403, 404, 422))
    async def get_account(account_id: Id, who: Principal = Depends(account)) -> AccountView:
        return await accounts.view(who, account_id)

    return r
