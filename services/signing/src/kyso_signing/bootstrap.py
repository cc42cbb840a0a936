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
    CloudEvent,
    ConsentRejected,
    ContractSealed,
    ContractSigned,
    IssuanceStopped,
    OrderCancelled,
    OrderExpired,
    OrderPlaced,
    Payload,
    PaymentAmountMismatch,
    PaymentConfirmed,
    SignatureCompleted,
    SignatureExpired,
    SignatureRejected,
    SignatureRequested,
    SmartOtpTransactionVerified,
    SmsOtpVerified,
)
from kyso_kit import openapi
from kyso_kit.crypto import SecretBox
from kyso_kit.runtime import ServiceRuntime

from . import csc_api, http_api, pki_api, profiles, rp_api
from .activation import Activation
from .authority import Authority, Hierarchy
from .certificates import Certificates
from .clients import Clients
from .contract import Contracts
from .crl import RevocationLists
from .evidence import AuditLog
from .issuance import Issuance
from .lifecycle import Lifecycle
from .ocsp import Responder
from .papers import Acceptance, Papers, PdfRequests
from .pin import PinUnlock
from .remote import RemoteSigning
from .schemas import TokenRequest
from .settings import SigningSettings
from .tsa import TimestampAuthority
from .webhooks import Webhooks

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
    settings = settings or SigningSettings()
    rt = ServiceRuntime(settings, publishes=PUBLISHES)
    assert settings.master_key_b64
    box = SecretBox(settings.master_key_b64)
    authority = Authority(rt.store.collection("authority"), box, hierarchy(settings), rt.clock)
    crls = RevocationLists(rt.store, authority, rt.clock, timedelta(hours=settings.crl_validity_hours))
    stamper = TimestampAuthority(authority.tsa_policy_oid, rt.clock)
    responder = Responder(rt.store, authority, rt.clock, timedelta(minutes=settings.ocsp_response_validity_minutes))
    papers = Papers(rt.store, authority, crls, stamper, rt.clock, settings.provider_name, responder)
    remote = RemoteSigning(rt.store, settings.master_key_b64, rt.clock)
    acceptance = Acceptance(rt.store, papers, remote, rt.clock)
    pdfs = PdfRequests(rt.store, papers, remote, rt.clock)
    issuance = Issuance(rt.store, authority, box, rt.clock, papers)
    contracts = Contracts(rt.store, issuance, rt.clock, papers)
    activation = Activation(rt.store, authority, settings.master_key_b64, rt.clock, acceptance)
    certificates = Certificates(rt.store, authority)
    lifecycle = Lifecycle(rt.store, rt.clock)
    pin = PinUnlock(rt.store, settings.master_key_b64, rt.clock)
    clients = Clients(rt.store, box, rt.clock, public_callbacks_only=settings.profile == "production")
    webhooks = Webhooks(rt.store, clients, rt.clock)
    audit = AuditLog(rt.store, rt.clock)
    csc = csc_api.Csc(rt.store, remote, authority, webhooks, rt.clock, stamper, papers, responder)
    authority.on_responder_change.append(responder.forget_all)
    lifecycle.after_change.append(crls.refresh)
    lifecycle.after_status_change.append(remote.end_sads_of)

    async def load_tsa() -> None:
        stamper.use(authority.tsa_key, authority.tsa_certificate)

    for init in (
        contracts.init,
        issuance.init,
        load_tsa,
        certificates.init,
        lifecycle.init,
        crls.init,
        remote.init,
        webhooks.init,
        audit.init,
    ):
        rt.on_startup(init)

    async def tick() -> None:
        await authority.refresh_responder()
        await lifecycle.expire_due()
        await crls.refresh()

    async def sign_audit_head() -> None:
        await audit.sign_head(authority.seal_key)

    rt.every(settings.pki_tick_seconds, tick, "pki-upkeep")
    rt.every(1.0, remote.expire_due, "signing-request-expiry", quiet=True)
    rt.every(1.0, webhooks.deliver_due, "webhook-delivery", quiet=True)
    rt.every(settings.audit_checkpoint_seconds, sign_audit_head, "audit-checkpoint")
    rt.every(600, clients.forget_expired_tokens, "expired-client-tokens", quiet=True)
    on = rt.consumer.on
    on(OrderPlaced)(contracts.when_order_placed_remember_order)
    on(PaymentConfirmed)(contracts.when_payment_confirmed_prepare_contract)
    on(OrderCancelled)(contracts.when_order_closed_stop)
    on(OrderExpired)(contracts.when_order_closed_stop)
    on(ContractSigned)(contracts.when_contract_signed_seal)

    signing_purposes = {uc.SMS_PURPOSE for uc in (contracts, lifecycle, remote, pin)}

    @on(SmsOtpVerified, wants=lambda e: e.purpose in signing_purposes)
    async def when_sms_otp_verified(event: CloudEvent[SmsOtpVerified]) -> None:
        # each use case ignores the purposes that are not its own
        await contracts.when_sms_otp_verified_sign_contract(event)
        await lifecycle.when_sms_otp_verified_apply_request(event)
        await remote.when_sms_otp_verified_record(event)
        await pin.when_sms_otp_verified_allow_unlock(event)

    on(SmartOtpTransactionVerified)(remote.when_smartotp_verified_record)

    @on(SignatureCompleted)
    async def when_signature_completed(event: CloudEvent[SignatureCompleted]) -> None:
        await audit.when_signature_completed_record(event)
        await webhooks.when_signing_request_ended_notify(event)
        await acceptance.when_signature_completed_finish(event)
        await pdfs.when_signature_completed_finish(event)

    on(SignatureRejected)(webhooks.when_signing_request_ended_notify)
    on(SignatureExpired)(webhooks.when_signing_request_ended_notify)

    on(CertActivated)(lifecycle.when_cert_activated_supersede_previous)
    app = rt.http_app(
        "kyso signing",
        "Contracts, the certificate authority (CRL, OCSP), activation, remote signing",
        body_limits={"/v1/signing-requests/pdf": PDF_REQUEST_BODY_LIMIT},
    )
    app.include_router(
        http_api.router(contracts, activation, acceptance, certificates, lifecycle, pin, rt.verifier(), rt.clock)
    )
    app.include_router(pki_api.router(authority, crls, responder, stamper, rt.clock))
    addresses = settings.client_addresses()  # behind TRUSTED_PROXIES only
    app.include_router(rp_api.router(clients, remote, pdfs, rt.verifier(), rt.clock, addresses))
    app.include_router(csc_api.router(csc, csc_api.csc_client_dependency(clients), addresses))
    app.add_exception_handler(csc_api.CscError, csc_api.csc_error_handler)
    openapi.document(app, *csc_api.REQUEST_MODELS, TokenRequest)  # bodies the routes read themselves
    return rt, app
