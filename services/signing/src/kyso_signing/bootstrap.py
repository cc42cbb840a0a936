"""Composition root of the signing service."""

from __future__ import annotations

from datetime import timedelta

from fastapi import FastAPI

from kyso_contracts import (
    AcceptanceRecordSigned,
    CertActivated,
    CertExpired,
    CertIssued,
    CertResumed,
    CertRevoked,
    CertSuspended,
    ConsentRejected,
    ContractSealed,
    ContractSigned,
    IssuanceStopped,
    Payload,
    PaymentAmountMismatch,
    SignatureCompleted,
    SignatureExpired,
    SignatureRejected,
    SignatureRequested,
)
from kyso_kit import openapi
from kyso_kit.routing import wire
from kyso_kit.runtime import ServiceRuntime
from kyso_signing import patches
from kyso_signing.api import csc as csc_api
from kyso_signing.api import pki as pki_api
from kyso_signing.api import relying_parties as rp_api
from kyso_signing.api import subscriber as http_api
from kyso_signing.core import CoreConfig, build_core
from kyso_signing.handlers import HANDLERS
from kyso_signing.pki import profiles
from kyso_signing.pki.hierarchy import Hierarchy
from kyso_signing.remote import csc_wire
from kyso_signing.remote.views import TokenRequest
from kyso_signing.settings import SigningSettings

PUBLISHES: list[type[Payload]] = [
    AcceptanceRecordSigned,
    ContractSigned,
    ContractSealed,
    CertIssued,
    CertActivated,
    IssuanceStopped,
    PaymentAmountMismatch,
    ConsentRejected,
    CertRevoked,
    CertSuspended,
    CertResumed,
    CertExpired,
    SignatureRequested,
    SignatureCompleted,
    SignatureRejected,
    SignatureExpired,
]


PDF_REQUEST_BODY_LIMIT = 15 * 1024 * 1024  # a 10 MiB PDF in base64, and the JSON around it


def hierarchy(settings: SigningSettings) -> Hierarchy:
    return Hierarchy(
        organisation=settings.ca_organisation,
        root_common_name=settings.ca_root_common_name,
        issuing_common_name=settings.ca_common_name,
        urls=profiles.Urls(settings.pki_base_url),
        policy_oid=settings.ca_policy_oid,
        responder_validity=timedelta(hours=settings.ocsp_responder_validity_hours),
        tax_code=settings.provider_tax_code,
        root_certificate_pem=settings.ca_root_certificate_pem,
        root_key_sealed=settings.ca_root_key_sealed,
        issuing_certificate_pem=settings.ca_issuing_certificate_pem,
        issuing_key_sealed=settings.ca_issuing_key_sealed,
    )


def build(settings: SigningSettings | None = None) -> tuple[ServiceRuntime, FastAPI]:
    patches.apply()
    settings = settings or SigningSettings()
    rt = ServiceRuntime(settings, publishes=PUBLISHES)
    assert settings.master_key_b64
    core = build_core(
        rt.store,
        rt.clock,
        CoreConfig(
            master_key_b64=settings.master_key_b64,
            hierarchy=hierarchy(settings),
            provider_name=settings.provider_name,
            crl_validity=timedelta(hours=settings.crl_validity_hours),
            ocsp_validity=timedelta(minutes=settings.ocsp_response_validity_minutes),
            public_callbacks_only=settings.profile == "production",
        ),
    )
    for init in core.startup():
        rt.on_startup(init)

    async def tick() -> None:
        await core.authority.refresh_responder()
        await core.lifecycle.expire_due()
        await core.registration.catch_up()
        await core.crls.refresh()

    async def sign_audit_head() -> None:
        await core.audit.sign_head(core.authority.seal_key)

    rt.every(settings.pki_tick_seconds, tick, "pki-upkeep")
    rt.every(1.0, core.remote.expire_due, "signing-request-expiry", quiet=True)
    rt.every(1.0, core.webhooks.deliver_due, "webhook-delivery", quiet=True)
    rt.every(settings.audit_checkpoint_seconds, sign_audit_head, "audit-checkpoint")
    rt.every(600, core.clients.forget_expired_tokens, "expired-client-tokens", quiet=True)
    wire(rt.consumer, HANDLERS, core)
    app = rt.http_app(
        "kyso signing",
        "Contracts, the certificate authority (CRL, OCSP), activation, remote signing",
        body_limits={"/v1/signing-requests/pdf": PDF_REQUEST_BODY_LIMIT},
    )
    app.include_router(
        http_api.router(
            core.contracts,
            core.activation,
            core.acceptance,
            core.certificates,
            core.lifecycle,
            core.pin,
            rt.verifier(),
            rt.clock,
        )
    )
    app.include_router(pki_api.router(core.authority, core.crls, core.responder, core.stamper, rt.clock))
    addresses = settings.client_addresses()  # behind TRUSTED_PROXIES only
    app.include_router(rp_api.router(core.clients, core.remote, core.pdfs, rt.verifier(), rt.clock, addresses))
    app.include_router(csc_api.router(core.csc, csc_api.csc_client_dependency(core.clients), addresses))
    app.add_exception_handler(csc_wire.CscError, csc_api.csc_error_handler)
    openapi.document(app, *csc_wire.REQUEST_MODELS, TokenRequest)  # bodies the routes read themselves
    return rt, app
