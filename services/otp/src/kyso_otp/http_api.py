"""HTTP entry points of the otp service."""

from __future__ import annotations

import hmac
import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Query, Request
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from kyso_contracts import OtpPurpose
from kyso_contracts.transactions import Transaction
from kyso_kit.auth import (
    TokenVerifier,
    bearer_dependency,
    forbidden,
    fresh_credential_dependency,
    optional_bearer_dependency,
    unauthorized,
)
from kyso_kit.errors import ApiError

from .delivery import DevInbox
from .methods import OtpMethods
from .settings import OtpSettings
from .smartotp import SmartOtp
from .sms import SmsOtp

IdStr = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
PhoneStr = Annotated[str, StringConstraints(pattern=r"^\+84[1-9]\d{8}$")]
Sha256Str = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
CodeStr = Annotated[str, StringConstraints(min_length=1, max_length=16)]
Method = Literal["sms", "smartotp"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ChallengeRequest(Strict):
    purpose: OtpPurpose
    subject: IdStr = Field(description="What the code is for: a registration, contract, token… id")
    phone: PhoneStr | None = Field(default=None, description="Only for phone verification")
    account_id: IdStr | None = None
    binding_sha256: Sha256Str | None = Field(default=None, description="Digest the code authorises")


class CodeRequest(Strict):
    code: CodeStr
    device_time: float | None = Field(default=None, description="The device's Unix time, for a clock-drift hint")


class TransactionCodeRequest(CodeRequest):
    transaction: Transaction


class ResyncRequest(Strict):
    code1: CodeStr
    code2: CodeStr


class EnrolmentRequest(Strict):
    account_id: IdStr
    terms_version: Annotated[str, StringConstraints(min_length=1, max_length=32)]
    terms_accepted: bool
    sms_challenge_id: IdStr


class ActivationRequest(Strict):
    activation_code: CodeStr
    device_id: IdStr


class PinResetRequest(Strict):
    sms_challenge_id: IdStr


class PreferredRequest(Strict):
    method: Method


class LockRequest(Strict):
    reason: Annotated[str, StringConstraints(min_length=3, max_length=500)]


class UnlockRequest(Strict):
    sms_challenge_id: IdStr | None = None
    token_id: IdStr | None = None
    code: CodeStr | None = None


def router(
    settings: OtpSettings,
    sms: SmsOtp,
    smartotp: SmartOtp,
    methods: OtpMethods,
    inbox: DevInbox | None,
    verifier: TokenVerifier,
) -> APIRouter:
    r = APIRouter(prefix="/v1")
    account = bearer_dependency(verifier)
    maybe_account = optional_bearer_dependency(verifier)
    fresh = fresh_credential_dependency(verifier, settings.fresh_credential_seconds)

    def own(caller: str, account_id: str) -> None:
        if caller != account_id:
            raise forbidden()

    async def operator(x_operator_key: Annotated[str | None, Header()] = None) -> None:
        assert settings.operator_key
        if not x_operator_key or not hmac.compare_digest(x_operator_key, settings.operator_key):
            raise ApiError(401, "operator_unauthorized", "Operator key missing or wrong", "Khóa vận hành không hợp lệ")

    # -------------------------------------------------------------- SMS OTP
    @r.post("/sms-otp/challenges", status_code=201, tags=["sms-otp"])
    async def create_challenge(body: ChallengeRequest, caller: str | None = Depends(maybe_account)) -> dict[str, Any]:
        # Before an account exists only phone verification is possible; everything else is the
        # signed-in account asking for a code to its own registered phone.
        if body.purpose != OtpPurpose.PHONE_VERIFICATION:
            if caller is None:
                raise unauthorized()
            own(caller, body.account_id or "")
        return await sms.create(body.purpose, body.subject, body.phone, body.account_id, body.binding_sha256)

    @r.post("/sms-otp/challenges/{challenge_id}/resend", tags=["sms-otp"])
    async def resend(challenge_id: IdStr) -> dict[str, Any]:
        return await sms.resend(challenge_id)

    @r.post("/sms-otp/challenges/{challenge_id}/verify", tags=["sms-otp"])
    async def verify_challenge(challenge_id: IdStr, body: CodeRequest) -> dict[str, Any]:
        return await sms.verify(challenge_id, body.code)

    # -------------------------------------------------------------- SmartOTP
    @r.get("/time", tags=["smartotp"])
    async def server_time() -> dict[str, Any]:
        t = time.time()
        p = smartotp.policy
        return {
            "server_time": t,
            "period": p.period,
            "step": int(t // p.period),
            "seconds_left_in_step": round(p.period - t % p.period, 3),
        }

    @r.get("/smartotp/terms", tags=["smartotp"])
    async def terms() -> dict[str, str]:
        return smartotp.terms()

    @r.post("/smartotp/enrolments", status_code=201, tags=["smartotp"])
    async def enrol(body: EnrolmentRequest, caller: str = Depends(fresh)) -> dict[str, Any]:
        """Terms accepted + fresh account credential + SMS OTP → a single-use activation code."""
        own(caller, body.account_id)
        if not body.terms_accepted:
            raise ApiError(
                422,
                "terms_not_accepted",
                "The SmartOTP terms must be accepted",
                "Bạn cần đồng ý điều khoản sử dụng SmartOTP",
            )
        return await smartotp.enrol(body.account_id, body.terms_version, body.sms_challenge_id)

    @r.post("/smartotp/activations", status_code=201, tags=["smartotp"])
    async def activate(body: ActivationRequest, request: Request) -> dict[str, Any]:
        """The device presents the activation code; the seed is returned once, as an otpauth:// URI."""
        client = request.client.host if request.client else "unknown"
        return await smartotp.activate(body.activation_code, body.device_id, client=client)

    @r.get("/smartotp/tokens/{token_id}", tags=["smartotp"])
    async def token_status(token_id: IdStr, caller: str = Depends(account)) -> dict[str, Any]:
        return await smartotp.status(caller, token_id)

    @r.post("/smartotp/tokens/{token_id}/verify", tags=["smartotp"])
    async def verify_token(token_id: IdStr, body: CodeRequest, caller: str = Depends(account)) -> dict[str, Any]:
        return await smartotp.verify(caller, token_id, body.code, body.device_time)

    @r.post("/smartotp/tokens/{token_id}/verify-transaction", tags=["smartotp"])
    async def verify_transaction(
        token_id: IdStr, body: TransactionCodeRequest, caller: str = Depends(account)
    ) -> dict[str, Any]:
        """A code computed over this exact transaction (amount + payee, or document hashes)."""
        digest = body.transaction.digest()
        out = await smartotp.verify(caller, token_id, body.code, body.device_time, transaction_digest=digest)
        return {**out, "transaction_digest": digest}

    @r.post("/smartotp/tokens/{token_id}/resync", tags=["smartotp"])
    async def resync(token_id: IdStr, body: ResyncRequest, caller: str = Depends(account)) -> dict[str, Any]:
        """Two consecutive codes re-learn the device's clock drift."""
        return await smartotp.verify(caller, token_id, body.code1, code2=body.code2)

    @r.post("/smartotp/pin-reset", status_code=201, tags=["smartotp"])
    async def pin_reset(body: PinResetRequest, caller: str = Depends(fresh)) -> dict[str, Any]:
        """Forgotten SmartOTP PIN: fresh credential + SMS OTP → old token revoked → a new activation code."""
        return await smartotp.reset_forgotten_pin(caller, body.sms_challenge_id)

    # -------------------------------------------------------------- methods
    @r.get("/accounts/{account_id}/otp-methods", tags=["methods"])
    async def get_methods(account_id: IdStr, caller: str = Depends(account)) -> dict[str, Any]:
        own(caller, account_id)
        return await methods.view(account_id)

    @r.put("/accounts/{account_id}/otp-methods/preferred", tags=["methods"])
    async def set_preferred(account_id: IdStr, body: PreferredRequest, caller: str = Depends(fresh)) -> dict[str, Any]:
        own(caller, account_id)
        return await methods.set_preferred(account_id, body.method)

    @r.post("/accounts/{account_id}/otp-methods/{method}/unlock", tags=["methods"])
    async def unlock(
        account_id: IdStr, method: Method, body: UnlockRequest, caller: str = Depends(fresh)
    ) -> dict[str, Any]:
        own(caller, account_id)
        return await methods.unlock(
            account_id, method, sms_challenge_id=body.sms_challenge_id, token_id=body.token_id, code=body.code
        )

    @r.post(
        "/operator/accounts/{account_id}/otp-methods/{method}/lock", tags=["operator"], dependencies=[Depends(operator)]
    )
    async def operator_lock(account_id: IdStr, method: Method, body: LockRequest) -> dict[str, Any]:
        return await methods.operator_lock(account_id, method, body.reason)

    if inbox is not None:

        @r.get("/dev/sms-inbox", tags=["development"])
        async def dev_inbox(phone: Annotated[str, Query(pattern=r"^\+84[1-9]\d{8}$")]) -> dict[str, Any]:
            return {"messages": await inbox.messages(phone)}

    return r
