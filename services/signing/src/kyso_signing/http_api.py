"""HTTP entry points of the signing service."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, ConfigDict, StringConstraints

from kyso_kit.auth import TokenVerifier, bearer_dependency

from .service import SigningService

IdStr = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]


class ActivationRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    pin: Annotated[str, StringConstraints(min_length=1, max_length=16)]
    acceptance_record_sha256: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]


def router(svc: SigningService, verifier: TokenVerifier) -> APIRouter:
    r = APIRouter(prefix="/v1")
    account = bearer_dependency(verifier)

    @r.get("/contracts", tags=["contracts"])
    async def contract(
        order_id: Annotated[str, Query(pattern=r"^[A-Za-z0-9_-]{1,64}$")], account_id: str = Depends(account)
    ) -> dict[str, Any]:
        return await svc.contract_for_order(account_id, order_id)

    @r.get("/certificates/{certificate_id}", tags=["certificates"])
    async def certificate(certificate_id: IdStr, account_id: str = Depends(account)) -> dict[str, Any]:
        return await svc.certificate(account_id, certificate_id)

    @r.get("/certificates/{certificate_id}/acceptance-record", tags=["certificates"])
    async def acceptance_record(certificate_id: IdStr, account_id: str = Depends(account)) -> dict[str, Any]:
        return await svc.acceptance_record(account_id, certificate_id)

    @r.post("/certificates/{certificate_id}/activation", tags=["certificates"])
    async def activate(
        certificate_id: IdStr, body: ActivationRequest, account_id: str = Depends(account)
    ) -> dict[str, Any]:
        """Step 5: set the signing PIN and sign the acceptance record with the new key."""
        return await svc.activate(account_id, certificate_id, body.pin, body.acceptance_record_sha256)

    @r.get("/ca/certificate", tags=["pki"], response_class=PlainTextResponse)
    async def ca_certificate() -> str:
        return svc.authority.ca_pem

    @r.get("/ca/provider-seal", tags=["pki"], response_class=PlainTextResponse)
    async def provider_seal() -> str:
        return svc.authority.seal_public_pem

    return r
