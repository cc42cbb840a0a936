"""HTTP entry points of the otp service."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from kyso_contracts import OtpPurpose
from kyso_contracts.types import Id, Phone
from kyso_kit.auth import (
    Principal,
    TokenVerifier,
    bearer_dependency,
    ensure_may,
    fresh_credential_dependency,
    optional_bearer_dependency,
    role_dependency,
)
from kyso_kit.clock import Clock
from kyso_kit.errors import Invalid, unauthorized
from kyso_kit.openapi import OPTIONAL_BEARER, errors

from .delivery import DevInbox
from .methods import OtpMethods
from .schemas import (
    ActivationCodeView,
    ActivationRequest,
    ChallengeRequest,
    ChallengeVerified,
    ChallengeView,
    CodeRequest,
    DeviceActivation,
    EnrolmentRequest,
    LockRequest,
    Method,
    MethodsView,
    PinResetRequest,
    PreferredRequest,
    ResendView,
    ResyncRequest,
    ServerTime,
    SmsInbox,
    Terms,
    TokenStatus,
    TransactionCodeRequest,
    UnlockRequest,
    Verification,
)
from .settings import OtpSettings
from .smartotp import SmartOtp
from .sms import SmsOtp


def router(
    settings: OtpSettings,
    sms: SmsOtp,
    smartotp: SmartOtp,
    methods: OtpMethods,
    inbox: DevInbox | None,
    verifier: TokenVerifier,
    clock: Clock,
) -> APIRouter:
    r = APIRouter(prefix="/v1")
    account = bearer_dependency(verifier)
    maybe_account = optional_bearer_dependency(verifier)
    fresh = fresh_credential_dependency(verifier, settings.fresh_credential_seconds, clock)
    operator = role_dependency(verifier, "operator")
    client_address = settings.client_addresses().dependency()

    # -------------------------------------------------------------- SMS OTP
    @r.post(
        "/sms-otp/challenges",
        status_code=201,
        tags=["sms-otp"],
        response_model=ChallengeView,
        responses=errors(401, 403, 404, 422, 429, 502),
        openapi_extra=OPTIONAL_BEARER,
    )
    async def create_challenge(body: ChallengeRequest, who: Principal | None = Depends(maybe_account)) -> Any:
        """A six-digit code by SMS. Before an account exists only phone verification is possible;
        everything else is the signed-in account asking for a code to its own registered phone."""
        if body.purpose != OtpPurpose.PHONE_VERIFICATION:
            if who is None:
                raise unauthorized()
            ensure_may(who, body.account_id, "sign")
        return await sms.create(body.purpose, body.subject, body.phone, body.account_id, body.binding_sha256)

    @r.post(
        "/sms-otp/challenges/{challenge_id}/resend",
        tags=["sms-otp"],
        response_model=ResendView,
        responses=errors(409, 422, 429, 502),
    )
    async def resend(challenge_id: Id) -> Any:
        return await sms.resend(challenge_id)

    @r.post(
        "/sms-otp/challenges/{challenge_id}/verify",
        tags=["sms-otp"],
        response_model=ChallengeVerified,
        responses=errors(400, 422),
    )
    async def verify_challenge(challenge_id: Id, body: CodeRequest) -> Any:
        return await sms.verify(challenge_id, body.code)

    # -------------------------------------------------------------- SmartOTP
    @r.get("/time", tags=["smartotp"])
    async def server_time() -> ServerTime:
        t = clock.time()
        p = smartotp.policy
        return ServerTime(
            server_time=t,
            period=p.period,
            step=int(t // p.period),
            seconds_left_in_step=round(p.period - t % p.period, 3),
        )

    @r.get("/smartotp/terms", tags=["smartotp"])
    async def terms() -> Terms:
        return Terms(**smartotp.terms())

    @r.post(
        "/smartotp/enrolments",
        status_code=201,
        tags=["smartotp"],
        response_model=ActivationCodeView,
        responses=errors(401, 403, 409, 422),
    )
    async def enrol(body: EnrolmentRequest, who: Principal = Depends(fresh)) -> Any:
        """Terms accepted + fresh account credential + SMS OTP → a single-use activation code."""
        ensure_may(who, body.account_id, "sign")
        if not body.terms_accepted:
            raise Invalid(
                "terms_not_accepted",
                "The SmartOTP terms must be accepted",
                "Bạn cần đồng ý điều khoản sử dụng SmartOTP",
            )
        return await smartotp.enrol(body.account_id, body.terms_version, body.sms_challenge_id)

    @r.post(
        "/smartotp/activations",
        status_code=201,
        tags=["smartotp"],
        response_model=DeviceActivation,
        responses=errors(400, 422, 429),
    )
    async def activate(body: ActivationRequest, client: str = Depends(client_address)) -> Any:
        """The device presents the enrolment and its activation code; the seed is returned once, as an
        otpauth:// URI. Five wrong codes void the enrolment (``attempts_left`` in a 400 counts down);
        429 only for an address that sprayed many wrong codes, and never for a first try at an
        enrolment."""
        return await smartotp.activate(body.token_id, body.activation_code, body.device_id, client=client)

    @r.get(
        "/smartotp/tokens/{token_id}",
        tags=["smartotp"],
        response_model=TokenStatus,
        responses=errors(400, 401, 403, 422),
    )
    async def token_status(token_id: Id, who: Principal = Depends(account)) -> Any:
        return await smartotp.status(who, token_id)

    @r.post(
        "/smartotp/tokens/{token_id}/verify",
        tags=["smartotp"],
        response_model=Verification,
        responses=errors(400, 401, 403, 422),
    )
    async def verify_token(token_id: Id, body: CodeRequest, who: Principal = Depends(account)) -> Any:
        return await smartotp.verify(who.account_id, token_id, body.code, body.device_time)

    @r.post(
        "/smartotp/tokens/{token_id}/verify-transaction",
        tags=["smartotp"],
        response_model=Verification,
        responses=errors(400, 401, 403, 422),
    )
    async def verify_transaction(token_id: Id, body: TransactionCodeRequest, who: Principal = Depends(account)) -> Any:
        """A code computed over this exact transaction (amount + payee, or document hashes)."""
        digest = body.transaction.digest()
        out = await smartotp.verify(
            who.account_id, token_id, body.code, body.device_time, transaction_digest=digest, reference=body.reference
        )
        return {**out, "transaction_digest": digest}

    @r.post(
        "/smartotp/tokens/{token_id}/resync",
        tags=["smartotp"],
        response_model=Verification,
        responses=errors(400, 401, 403, 422),
    )
    async def resync(token_id: Id, body: ResyncRequest, who: Principal = Depends(account)) -> Any:
        """Two consecutive codes re-learn the device's clock drift."""
        return await smartotp.verify(who.account_id, token_id, body.code1, code2=body.code2)

    @r.post(
        "/smartotp/pin-reset",
        status_code=201,
        tags=["smartotp"],
        response_model=ActivationCodeView,
        responses=errors(401, 403, 422),
    )
    async def pin_reset(body: PinResetRequest, who: Principal = Depends(fresh)) -> Any:
        """Forgotten SmartOTP PIN: fresh credential + SMS OTP → old token revoked → a new activation code."""
        return await smartotp.reset_forgotten_pin(who.account_id, body.sms_challenge_id)

    # -------------------------------------------------------------- methods
    @r.get(
        "/accounts/{account_id}/otp-methods",
        tags=["methods"],
        response_model=MethodsView,
        responses=errors(401, 403, 422),
    )
    async def get_methods(account_id: Id, who: Principal = Depends(account)) -> Any:
        ensure_may(who, account_id, "read")
        return await methods.view(account_id)

    @r.put(
        "/accounts/{account_id}/otp-methods/preferred",
        tags=["methods"],
        response_model=MethodsView,
        responses=errors(401, 403, 409, 422),
    )
    async def set_preferred(account_id: Id, body: PreferredRequest, who: Principal = Depends(fresh)) -> Any:
        ensure_may(who, account_id, "sign")
        return await methods.set_preferred(account_id, body.method)

    @r.post(
        "/accounts/{account_id}/otp-methods/{method}/unlock",
        tags=["methods"],
        response_model=MethodsView,
        responses=errors(400, 401, 403, 422),
    )
    async def unlock(account_id: Id, method: Method, body: UnlockRequest, who: Principal = Depends(fresh)) -> Any:
        ensure_may(who, account_id, "sign")
        return await methods.unlock(
            account_id, method, sms_challenge_id=body.sms_challenge_id, token_id=body.token_id, code=body.code
        )

    @r.post(
        "/operator/accounts/{account_id}/otp-methods/{method}/lock",
        tags=["operator"],
        response_model=MethodsView,
        responses=errors(401, 403, 409, 422),
    )
    async def operator_lock(
        account_id: Id, method: Method, body: LockRequest, who: Principal = Depends(operator)
    ) -> Any:
        """An operator (role ``operator``) locks one method of an account; the other keeps working."""
        del who
        return await methods.operator_lock(account_id, method, body.reason)

    if inbox is not None:

        @r.get("/dev/sms-inbox", tags=["development"], responses=errors(422))
        async def dev_inbox(phone: Annotated[Phone, Query(description="Whose messages")]) -> SmsInbox:
            """Development only: what the SMS gateway would have delivered."""
            return SmsInbox(messages=await inbox.messages(phone))  # type: ignore[arg-type]

    return r
