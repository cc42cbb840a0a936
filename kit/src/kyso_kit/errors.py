"""Errors that reach a user: a stable code and a message in Vietnamese and English.

Use cases raise these domain errors; they say *what kind* of failure happened, never an HTTP status.
The one mapping to HTTP lives in :mod:`kyso_kit.http` (``STATUS_OF``), so every service answers the
same failure with the same status and the same body ``{"error": {code, message, message_vi}}``.
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """A failure the caller can understand and act on."""

    def __init__(
        self,
        code: str,
        message_en: str,
        message_vi: str,
        *,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(f"{code}: {message_en}")
        self.code = code
        self.message_en = message_en
        self.message_vi = message_vi
        self.details = details or {}

    def body(self) -> dict[str, Any]:
        err: dict[str, Any] = {"code": self.code, "message": self.message_en, "message_vi": self.message_vi}
        if self.details:
            err["details"] = self.details
        return {"error": err}


class Rejected(DomainError):
    """The request was understood but its content is wrong (a wrong code, a bad signature)."""


class Unauthenticated(DomainError):
    """Who is calling is unknown or not proven enough."""

    def __init__(self, code: str, message_en: str, message_vi: str, *, challenge: str = "Bearer") -> None:
        super().__init__(code, message_en, message_vi)
        self.challenge = challenge


class Forbidden(DomainError):
    """The caller is known but may not act on this resource."""


class NotFound(DomainError):
    pass


class Conflict(DomainError):
    """The resource is not in a state that allows this (already done, not yet possible)."""


class Invalid(DomainError):
    """The input breaks a rule (a weak password, an unknown package)."""


class TooLarge(DomainError):
    """What was sent is larger than the service takes (a file, a batch)."""


class TooMany(DomainError):
    """Guessing or sending is bounded; try again after ``retry_after`` seconds."""

    def __init__(self, code: str, message_en: str, message_vi: str, retry_after: float) -> None:
        self.retry_after = max(1, int(retry_after))
        super().__init__(code, message_en, message_vi, details={"retry_after_seconds": self.retry_after})


class Upstream(DomainError):
    """A partner system (SMS gateway, payment gateway) failed; nothing was changed here."""


class IllegalTransition(Conflict):
    """A state machine was asked for a transition it does not allow."""

    def __init__(self, machine: str, state: str, action: str) -> None:
        super().__init__(
            "illegal_transition",
            f"The {machine} cannot {action} while {state}",
            f"Không thể thực hiện thao tác này ở trạng thái hiện tại ({state})",
            details={"machine": machine, "state": state, "action": action},
        )
        self.machine = machine
        self.state = state
        self.action = action


def not_found(what: str, what_vi: str) -> NotFound:
    return NotFound("not_found", f"{what} not found", f"Không tìm thấy {what_vi}")


def forbidden() -> Forbidden:
    return Forbidden("forbidden", "This resource belongs to another account", "Tài nguyên này thuộc về tài khoản khác")


def unauthorized() -> Unauthenticated:
    return Unauthenticated(
        "unauthorized",
        "Sign in again: the access token is missing, invalid or expired",
        "Phiên đăng nhập không hợp lệ hoặc đã hết hạn, vui lòng đăng nhập lại",
    )
