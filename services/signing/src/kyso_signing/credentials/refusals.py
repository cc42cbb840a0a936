"""What the certificate state machine refuses a lifecycle action, with a stable code each, checked before
anything changes (and again, on the record as it is, in the write's decision)."""

from __future__ import annotations

from kyso_kit.errors import Conflict
from kyso_kit.store import Doc
from kyso_signing.credentials import domain
from kyso_signing.credentials.domain import CertificateStatus as S
from kyso_signing.credentials.views import LifecycleAction


def already_revoked() -> Conflict:
    return Conflict("already_revoked", "The certificate is already revoked", "Chứng thư số đã bị thu hồi")


def not_suspended() -> Conflict:
    return Conflict(
        "not_suspended",
        "Only a suspended certificate can be resumed",
        "Chỉ chứng thư số đang tạm dừng mới được khôi phục",
    )


def not_in_force(status: str) -> Conflict:
    return Conflict(
        "certificate_not_in_force",
        f"The certificate is {status}; this cannot be done to it",
        "Chứng thư số không còn hiệu lực cho thao tác này",
    )


def check_allowed(doc: Doc, action: LifecycleAction) -> None:
    """Refuse, with a stable code, what the state machine does not allow (before anything changes)."""
    status = S(doc["status"])
    if status == S.REVOKED:
        raise already_revoked()
    if action == "resume" and status != S.SUSPENDED:
        raise not_suspended()
    if action == "suspend" and status == S.SUSPENDED:
        raise Conflict("already_suspended", "The certificate is already suspended", "Chứng thư số đang tạm dừng")
    act = {"revoke": "revoke", "suspend": "suspend", "resume": "resume"}[action]
    if (status, act) not in domain.TRANSITIONS:
        raise not_in_force(status.value)
