"""Errors the credentials room answers that other rooms raise as well (one code, one text)."""

from __future__ import annotations

from kyso_kit.errors import Conflict


def not_in_force() -> Conflict:
    return Conflict(
        "credential_not_active",
        "The certificate is not active (not activated, suspended, revoked or expired)",
        "Chứng thư số không ở trạng thái hoạt động",
    )
