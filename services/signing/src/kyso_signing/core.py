"""The signing service's core: every use case over a store and a clock, composed in one place.

Bootstrap builds it on the real database and clock from the settings; the service tests build it on the
in-memory store and a fake clock (``tests/service/test_signing_rules.py``): one composition, not two.
Bootstrap adds only what needs the process — HTTP routers, the consumer (``handlers.HANDLERS``), and
the periodic jobs.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

from kyso_kit.clock import Clock
from kyso_kit.crypto import SecretBox
from kyso_kit.store import Store
from kyso_signing.credentials.certificates import Certificates
from kyso_signing.credentials.contract import Contracts
from kyso_signing.credentials.custody import KeyCustody
from kyso_signing.credentials.issuance import Issuance
from kyso_signing.credentials.lifecycle import Lifecycle
from kyso_signing.credentials.pin import PinUnlock
from kyso_signing.credentials.registration import Registration
from kyso_signing.documents.files import Papers
from kyso_signing.flows.acceptance import Acceptance
from kyso_signing.flows.activation import Activation
from kyso_signing.flows.pdfs import PdfRequests
from kyso_signing.pki.authority import Authority
from kyso_signing.pki.crl import RevocationLists
from kyso_signing.pki.hierarchy import Hierarchy
from kyso_signing.pki.ocsp import Responder
from kyso_signing.pki.registry import Registry
from kyso_signing.pki.tsa import TimestampAuthority
from kyso_signing.remote.clients import Clients
from kyso_signing.remote.csc import Csc
from kyso_signing.remote.evidence import AuditLog
from kyso_signing.remote.requests import OTP_WAIT_SECONDS, RemoteSigning
from kyso_signing.remote.webhooks import Post, Webhooks


@dataclass(frozen=True)
class CoreConfig:
    master_key_b64: str
    hierarchy: Hierarchy
    provider_name: str
    crl_validity: timedelta
    ocsp_validity: timedelta
    public_callbacks_only: bool = False
    otp_wait_seconds: float = OTP_WAIT_SECONDS


@dataclass
class SigningCore:
    authority: Authority
    crls: RevocationLists
    stamper: TimestampAuthority
    responder: Responder
    papers: Papers
    custody: KeyCustody
    remote: RemoteSigning
    acceptance: Acceptance
    pdfs: PdfRequests
    registry: Registry
    registration: Registration
    issuance: Issuance
    contracts: Contracts
    activation: Activation
    certificates: Certificates
    lifecycle: Lifecycle
    pin: PinUnlock
    clients: Clients
    webhooks: Webhooks
    audit: AuditLog
    csc: Csc

    def startup(self) -> list[Callable[[], Awaitable[None]]]:
        """What runs before the service takes requests, in this order."""

        async def load_tsa() -> None:
            self.stamper.use(self.authority.tsa_key, self.authority.tsa_certificate)

        return [
            self.contracts.init,
            self.issuance.init,
            load_tsa,
            self.certificates.init,
            self.lifecycle.init,
            self.registration.init,  # before the first CRL: it backfills the CA registry once
            self.crls.init,
            self.remote.init,
            self.webhooks.init,
            self.audit.init,
        ]

    async def start(self) -> None:
        for init in self.startup():
            await init()


def build_core(store: Store, clock: Clock, config: CoreConfig, *, post: Post | None = None) -> SigningCore:
    """``post``: how webhooks are sent (default: HTTP)."""
    box = SecretBox(config.master_key_b64)
    authority = Authority(store.collection("authority"), box, config.hierarchy, clock)
    crls = RevocationLists(store, authority, clock, config.crl_validity)
    stamper = TimestampAuthority(authority.tsa_policy_oid, clock)
    responder = Responder(store, authority, clock, config.ocsp_validity)
    papers = Papers(store, authority, crls, stamper, clock, config.provider_name, responder)
    custody = KeyCustody(store, config.master_key_b64)
    remote = RemoteSigning(store, custody, box, clock, otp_wait_seconds=config.otp_wait_seconds)
    acceptance = Acceptance(store, papers, remote, clock)
    pdfs = PdfRequests(store, papers, remote, clock)
    registry = Registry(store)
    registration = Registration(store, registry, crls, clock)
    issuance = Issuance(store, authority, custody, clock, papers, registration)
    contracts = Contracts(store, issuance, clock, papers)
    activation = Activation(store, authority, custody, clock, acceptance)
    certificates = Certificates(store, authority)
    lifecycle = Lifecycle(store, clock, registration)
    pin = PinUnlock(store, custody, clock)
    clients = Clients(store, box, clock, public_callbacks_only=config.public_callbacks_only)
    webhooks = Webhooks(store, clients, clock, post)
    audit = AuditLog(store, clock)
    csc = Csc(store, remote, authority, webhooks, clock, stamper, papers, responder)
    authority.on_responder_change.append(responder.forget_all)
    lifecycle.after_status_change.append(remote.end_sads_of)  # a SAD ends with any status change
    return SigningCore(
        authority, crls, stamper, responder, papers, custody, remote, acceptance, pdfs, registry, registration,
        issuance, contracts, activation, certificates, lifecycle, pin, clients, webhooks, audit, csc,
    )  # fmt: skip
