"""HTTP entry points of the signing service."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import PlainTextResponse

from kyso_contracts.types import Id
from kyso_kit.auth import Principal, TokenVerifier, bearer_dependency
from kyso_kit.openapi import errors

from .activation import Activation
from .contract import Contracts
from .schemas import AcceptanceRecordView, ActivationRequest, ActivationView, CertificateView, ContractView

PEM = {200: {"content": {"text/plain": {"schema": {"type": "string"}}}, "description": "PEM text"}}


def router(contracts: Contracts, activation: Activation, verifier: TokenVerifier) -> APIRouter:
    r = APIRouter(prefix="/v1")
    account = bearer_dependency(verifier)

    @r.get("/contracts", tags=["contracts"], responses=errors(401, 403, 404, 422))
    async def contract(
        order_id: Annotated[Id, Query(description="The order the contract is for")],
        who: Principal = Depends(account),
        wait: Annotated[float, Query(ge=0, le=30, description="Long-poll: wait this long for the contract")] = 0,
    ) -> ContractView:
        """The service contract of an order (drawn up once the order is paid)."""
        return await contracts.for_order(who, order_id, wait)

    @r.get("/certificates/{certificate_id}", tags=["certificates"], responses=errors(401, 403, 404, 422))
    async def certificate(certificate_id: Id, who: Principal = Depends(account)) -> CertificateView:
        return await activation.certificate(who, certificate_id)

    @r.get(
        "/certificates/{certificate_id}/acceptance-record", tags=["certificates"], responses=errors(401, 403, 404, 422)
    )
    async def acceptance_record(certificate_id: Id, who: Principal = Depends(account)) -> AcceptanceRecordView:
        return await activation.acceptance_record(who, certificate_id)

    @r.post(
        "/certificates/{certificate_id}/activation", tags=["certificates"], responses=errors(401, 403, 404, 409, 422)
    )
    async def activate(
        certificate_id: Id, body: ActivationRequest, who: Principal = Depends(account)
    ) -> ActivationView:
        """Step 5: set the signing PIN and sign the acceptance record with the new key."""
        return await activation.activate(who, certificate_id, body.pin, body.acceptance_record_sha256)

    @r.get("/ca/certificate", tags=["pki"], response_class=PlainTextResponse, responses=PEM)  # type: ignore[arg-type]
    async def ca_certificate() -> str:
        """The issuing CA's certificate (PEM)."""
        return activation.authority.ca_pem

    @r.get("/ca/provider-seal", tags=["pki"], response_class=PlainTextResponse, responses=PEM)  # type: ignore[arg-type]
    async def provider_seal() -> str:
        """The public key that seals service contracts (PEM)."""
        return activation.authority.seal_public_pem

    return r
