"""HTTP entry points of the signing service (the public PKI endpoints are in :mod:`pki_api`)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import PlainTextResponse, Response

from kyso_contracts.types import Id
from kyso_kit.auth import Principal, TokenVerifier, bearer_dependency, fresh_credential_dependency, role_dependency
from kyso_kit.clock import Clock
from kyso_kit.errors import Invalid
from kyso_kit.openapi import errors
from kyso_signing.api.downloads import PDF_RESPONSE, pdf_response
from kyso_signing.credentials.certificates import Certificates, certificate_view
from kyso_signing.credentials.contract import Contracts
from kyso_signing.credentials.lifecycle import Lifecycle
from kyso_signing.credentials.pin import PinUnlock
from kyso_signing.credentials.views import (
    AcceptanceRecordView,
    ActivationRequest,
    ActivationView,
    CertificateList,
    CertificateView,
    ContractView,
    LifecycleRequest,
    PinUnlocked,
    PinUnlockRequest,
    RevocationRequestView,
    SubscriberLifecycleRequest,
)
from kyso_signing.flows.acceptance import Acceptance
from kyso_signing.flows.activation import Activation

PEM = {200: {"content": {"text/plain": {"schema": {"type": "string"}}}, "description": "PEM text"}}


def _checked(body: LifecycleRequest, clock: Clock) -> LifecycleRequest:
    if body.action != "revoke" and (body.reason != "unspecified" or body.invalidity_date is not None):
        raise Invalid(
            "reason_for_revocation_only",
            "A reason and an invalidity date are given only when revoking",
            "Lý do và thời điểm mất an toàn chỉ dùng khi thu hồi",
        )
    if body.invalidity_date is not None and body.invalidity_date > clock.now():
        raise Invalid(
            "invalidity_date_in_future",
            "The invalidity date cannot be in the future",
            "Thời điểm mất an toàn không được ở tương lai",
        )
    return body


def router(
    contracts: Contracts,
    activation: Activation,
    acceptance: Acceptance,
    certificates: Certificates,
    lifecycle: Lifecycle,
    pin: PinUnlock,
    verifier: TokenVerifier,
    clock: Clock,
) -> APIRouter:
    r = APIRouter(prefix="/v1")
    account = bearer_dependency(verifier)
    fresh = fresh_credential_dependency(verifier, clock=clock)
    operator = role_dependency(verifier, "operator")

    @r.get("/contracts", tags=["contracts"], responses=errors(401, 403, 404, 422))
    async def contract(
        order_id: Annotated[Id, Query(description="The order the contract is for")],
        who: Principal = Depends(account),
        wait: Annotated[float, Query(ge=0, le=30, description="Long-poll: wait this long for the contract")] = 0,
        until: Annotated[
            Literal["drawn_up", "sealed"],
            Query(description="What the long-poll waits for: the contract, or its sealed copy (after consent)"),
        ] = "drawn_up",
    ) -> ContractView:
        """The service contract of an order (it exists once the order is paid; its PDF is drawn up on first read;
        the provider seals it just after the certificate is issued)."""
        return await contracts.for_order(who, order_id, wait, sealed=until == "sealed")

    @r.get("/certificates", tags=["certificates"], responses=errors(401, 403, 422))
    async def my_certificates(
        who: Principal = Depends(account),
        account_id: Annotated[Id | None, Query(description="Another account's (operators and auditors)")] = None,
    ) -> CertificateList:
        """Every certificate issued to the account, newest first (renewals included)."""
        return await certificates.of_account(who, account_id)

    @r.get("/certificates/{certificate_id}", tags=["certificates"], responses=errors(401, 403, 404, 422))
    async def certificate(certificate_id: Id, who: Principal = Depends(account)) -> CertificateView:
        return await certificates.one(who, certificate_id)

    @r.get(
        "/certificates/{certificate_id}/acceptance-record", tags=["certificates"], responses=errors(401, 403, 404, 422)
    )
    async def acceptance_record(certificate_id: Id, who: Principal = Depends(account)) -> AcceptanceRecordView:
        return await activation.acceptance_record(who, certificate_id)

    @r.get(
        "/certificates/{certificate_id}/acceptance-record/pdf",
        tags=["certificates"],
        response_class=Response,
        responses={**PDF_RESPONSE, **errors(401, 403, 404, 422)},
    )
    async def acceptance_record_pdf(
        certificate_id: Id,
        who: Principal = Depends(account),
        version: Annotated[
            Literal["signed", "unsigned"], Query(description="As signed by the subscriber (PAdES), or as drawn up")
        ] = "signed",
    ) -> Response:
        """The acceptance record PDF (biên bản nghiệm thu)."""
        data = await acceptance.file(who, certificate_id, signed=version == "signed")
        return pdf_response(data, f"bien-ban-nghiem-thu-{certificate_id}-{version}.pdf")

    @r.post(
        "/certificates/{certificate_id}/acceptance-record/signing-request",
        tags=["certificates"],
        responses=errors(401, 403, 404, 409, 422),
    )
    async def ask_acceptance(certificate_id: Id, who: Principal = Depends(account)) -> AcceptanceRecordView:
        """Ask again for the subscriber's signature on the acceptance record (when the request made at
        activation expired or was rejected); confirm it in the app like any signing request."""
        await acceptance.ask(who, certificate_id)
        return await activation.acceptance_record(who, certificate_id)

    @r.get(
        "/contracts/{contract_id}/pdf",
        tags=["contracts"],
        response_class=Response,
        responses={**PDF_RESPONSE, **errors(401, 403, 404, 422)},
    )
    async def contract_pdf(
        contract_id: Id,
        who: Principal = Depends(account),
        version: Annotated[
            Literal["sealed", "unsigned"], Query(description="As sealed by the provider (PAdES), or as consented to")
        ] = "sealed",
    ) -> Response:
        """The service contract PDF."""
        data = await contracts.pdf(who, contract_id, sealed=version == "sealed")
        return pdf_response(data, f"hop-dong-{contract_id}-{version}.pdf")

    @r.post(
        "/certificates/{certificate_id}/activation", tags=["certificates"], responses=errors(401, 403, 404, 409, 422)
    )
    async def activate(
        certificate_id: Id, body: ActivationRequest, who: Principal = Depends(account)
    ) -> ActivationView:
        """Step 5: set the signing PIN. The acceptance record is drawn up, and a signing request for it
        waits for the subscriber's confirmation in the app (``acceptance_signing_request_id``)."""
        return await activation.activate(who, certificate_id, body.pin)

    @r.post(
        "/certificates/{certificate_id}/lifecycle-requests",
        tags=["certificates"],
        status_code=202,
        responses=errors(401, 403, 404, 409, 422),
    )
    async def request_change(
        certificate_id: Id, body: SubscriberLifecycleRequest, who: Principal = Depends(fresh)
    ) -> RevocationRequestView:
        """The subscriber asks to revoke or suspend a certificate (needs a password entered within 5 minutes).
        It happens once the SMS code asked for with the returned ``otp`` fields is verified."""
        b = _checked(body, clock)
        return await lifecycle.request(who, certificate_id, b.action, b.reason, b.invalidity_date)

    @r.post(
        "/operator/certificates/{certificate_id}/lifecycle",
        tags=["operator"],
        responses=errors(401, 403, 404, 409, 422),
    )
    async def operator_change(
        certificate_id: Id, body: LifecycleRequest, who: Principal = Depends(operator)
    ) -> CertificateView:
        """An operator revokes, suspends or resumes a certificate at once."""
        b = _checked(body, clock)
        doc = await lifecycle.operator_act(who, certificate_id, b.action, b.reason, b.invalidity_date)
        return certificate_view(doc, certificates.authority)

    @r.post(
        "/certificates/{certificate_id}/pin-unlock",
        tags=["certificates"],
        responses=errors(400, 401, 403, 404, 409, 422),
    )
    async def unlock_pin(certificate_id: Id, body: PinUnlockRequest, who: Principal = Depends(fresh)) -> PinUnlocked:
        """Unlock a locked signing PIN: a password entered within 5 minutes, an SMS code of purpose
        ``unlock`` for this certificate (verified first), the current PIN, and a new one."""
        await pin.unlock(who, certificate_id, body.current_pin, body.new_pin)
        return PinUnlocked(certificate_id=certificate_id, unlocked=True)

    @r.get("/ca/certificate", tags=["pki"], response_class=PlainTextResponse, responses=PEM)  # type: ignore[arg-type]
    async def ca_certificate() -> str:
        """The issuing CA's certificate (PEM)."""
        return certificates.authority.ca_pem

    @r.get("/ca/provider-seal", tags=["pki"], response_class=PlainTextResponse, responses=PEM)  # type: ignore[arg-type]
    async def provider_seal() -> str:
        """The public key that seals service contracts (PEM)."""
        return certificates.authority.seal_public_pem

    return r
