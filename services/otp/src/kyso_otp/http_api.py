"""HTTP entry points of the otp service."""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from kyso_contracts import OtpPurpose
from kyso_kit.auth import TokenVerifier, bearer_dependency, forbidden, optional_bearer_dependency, unauthorized
from kyso_kit.errors import ApiError

from . import domain
from .delivery import DevInbox
from .service import OtpService

IdStr = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
PhoneStr = Annotated[str, StringConstraints(pattern=r"^\+84[1-9]\d{8}$")]
Sha256Str = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ChallengeRequest(Strict):
    purpose: OtpPurpose
    subject: IdStr = Field(description="What the code is for: a registration, contract, token… id")
    phone: PhoneStr | None = Field(default=None, description="Only for phone verification")
    account_id: IdStr | None = None
    binding_sha256: Sha256Str | None = Field(default=None, description="Digest the code authorises")


class CodeRequest(Strict):
    code: Annotated[str, StringConstraints(min_length=1, max_length=16)]


class EnrolmentRequest(Strict):
    account_id: IdStr
    terms_version: Annotated[str, StringConstraints(min_length=1, max_length=32)]
    terms_accepted: bool
    sms_challenge_id: IdStr


class ActivationRequest(Strict):
    activation_code: Annotated[str, StringConstraints(min_length=1, max_length=16)]
    device_id: IdStr


def router(svc: OtpService, inbox: DevInbox | None, verifier: TokenVerifier) -> APIRouter:
    r = APIRouter(prefix="/v1")
    account = bearer_dependency(verifier)
    maybe_account = optional_bearer_dependency(verifier)

    @r.post("/sms-otp/challenges", status_code=201, tags=["sms-otp"])
    async def create_challenge(body: ChallengeRequest, caller: str | None = Depends(maybe_account)) -> dict[str, Any]:
        # Before an account exists only phone verification is possible; everything else is the
        # signed-in account asking for a code to its own registered phone.
        if body.purpose != OtpPurpose.PHONE_VERIFICATION:
            if caller is None:
                raise unauthorized()
            if body.account_id != caller:
                raise forbidden()
        return await svc.create_challenge(body.purpose, body.subject, body.phone, body.account_id, body.binding_sha256)

    @r.post("/sms-otp/challenges/{challenge_id}/verify", tags=["sms-otp"])
    async def verify_challenge(challenge_id: IdStr, body: CodeRequest) -> dict[str, Any]:
        return await svc.verify_challenge(challenge_id, body.code)

    @r.get("/time", tags=["smartotp"])
    async def server_time() -> dict[str, Any]:
        t = time.time()
        return {"server_time": t, "period": domain.TOTP_PERIOD, "step": domain.time_step(t)}

    @r.post("/smartotp/enrolments", status_code=201, tags=["smartotp"])
    async def start_enrolment(body: EnrolmentRequest, caller: str = Depends(account)) -> dict[str, Any]:
        if body.account_id != caller:
            raise forbidden()
        if not body.terms_accepted:
            raise ApiError(
                422,
                "terms_not_accepted",
                "The SmartOTP terms must be accepted",
                "Bạn cần đồng ý điều khoản sử dụng SmartOTP",
            )
        return await svc.start_enrolment(body.account_id, body.terms_version, body.sms_challenge_id)

    @r.post("/smartotp/activations", status_code=201, tags=["smartotp"])
    async def activate(body: ActivationRequest) -> dict[str, Any]:
        return await svc.activate_device(body.activation_code, body.device_id)

    @r.post("/smartotp/tokens/{token_id}/verify", tags=["smartotp"])
    async def verify_token(token_id: IdStr, body: CodeRequest) -> dict[str, Any]:
        return await svc.verify_token_code(token_id, body.code)

    if inbox is not None:

        @r.get("/dev/sms-inbox", tags=["development"])
        async def dev_inbox(phone: Annotated[str, Query(pattern=r"^\+84[1-9]\d{8}$")]) -> dict[str, Any]:
            return {"messages": await inbox.messages(phone)}

    return r
