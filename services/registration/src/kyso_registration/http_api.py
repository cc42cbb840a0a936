"""HTTP entry points of the registration service."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from kyso_kit.auth import TokenVerifier, bearer_dependency, forbidden

from . import domain
from .service import RegistrationService

IdStr = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
PhoneStr = Annotated[str, StringConstraints(pattern=r"^\+84[1-9]\d{8}$")]
EmailStr = Annotated[str, StringConstraints(max_length=254, pattern=r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class VneidIdentity(Strict):
    citizen_id: Annotated[str, StringConstraints(pattern=r"^\d{12}$")]
    full_name: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    date_of_birth: date
    eid_level: int = Field(ge=1, le=2)
    certificate_type: Literal["PERSONAL"] = "PERSONAL"
    issued_at: datetime
    nonce: Annotated[str, StringConstraints(min_length=16, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]


class VneidRegistration(Strict):
    identity: VneidIdentity
    signature_b64: Annotated[str, StringConstraints(min_length=16, max_length=512)]


class AccountRequest(Strict):
    phone: PhoneStr
    email: EmailStr
    password: Annotated[str, StringConstraints(min_length=1, max_length=256)]


class LoginRequest(Strict):
    phone: PhoneStr
    password: Annotated[str, StringConstraints(min_length=1, max_length=256)]


class OrderRequest(Strict):
    package_code: Annotated[str, StringConstraints(min_length=1, max_length=64)]


def router(svc: RegistrationService, verifier: TokenVerifier) -> APIRouter:
    r = APIRouter(prefix="/v1")
    account = bearer_dependency(verifier)

    @r.post("/vneid/registrations", status_code=201, tags=["vneid"])
    async def vneid_registration(body: VneidRegistration, request: Request) -> dict[str, Any]:
        """Step 1: VNeID hands over a signed level-2 identity."""
        # The signature covers the identity exactly as VNeID sent it, not our parsed form of it.
        raw = (await request.json())["identity"]
        return await svc.accept_identity(raw, body.signature_b64)

    @r.get("/registrations/{registration_id}", tags=["registration"])
    async def get_registration(registration_id: IdStr) -> dict[str, Any]:
        return await svc.get_registration(registration_id)

    @r.post("/registrations/{registration_id}/confirm", tags=["registration"])
    async def confirm(registration_id: IdStr) -> dict[str, Any]:
        """Step 2: the citizen confirms the data VNeID sent."""
        return await svc.confirm(registration_id)

    @r.post("/registrations/{registration_id}/account", status_code=201, tags=["registration"])
    async def create_account(registration_id: IdStr, body: AccountRequest) -> dict[str, Any]:
        """Step 3: phone (verified by SMS OTP first), email and password."""
        return await svc.create_account(registration_id, body.phone, body.email, body.password)

    @r.post("/sessions", tags=["account"])
    async def login(body: LoginRequest) -> dict[str, Any]:
        return await svc.login(body.phone, body.password)

    @r.get("/packages", tags=["orders"])
    async def packages() -> dict[str, Any]:
        return {
            "packages": [
                {
                    "code": p.code,
                    "name": p.name_en,
                    "name_vi": p.name_vi,
                    "validity_years": p.validity_years,
                    "price_vnd": p.price_vnd,
                }
                for p in domain.PACKAGES.values()
            ]
        }

    @r.post("/orders", status_code=201, tags=["orders"])
    async def place_order(body: OrderRequest, account_id: str = Depends(account)) -> dict[str, Any]:
        """Step 4: choose a package; payment is due next."""
        return await svc.place_order(account_id, body.package_code)

    @r.get("/orders/{order_id}", tags=["orders"])
    async def get_order(order_id: IdStr, account_id: str = Depends(account)) -> dict[str, Any]:
        """Steps 5–6: the order's status follows payment, contract and certificate events."""
        return await svc.get_order(account_id, order_id)

    @r.get("/accounts/{account_id}", tags=["account"])
    async def get_account(account_id: IdStr, caller: str = Depends(account)) -> dict[str, Any]:
        if caller != account_id:
            raise forbidden()
        return await svc.get_account(account_id)

    return r
