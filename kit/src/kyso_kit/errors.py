"""Errors that reach a user: an HTTP status, a stable code, and a message in Vietnamese and English."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        message_en: str,
        message_vi: str,
        *,
        headers: dict[str, str] | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(f"{code}: {message_en}")
        self.status = status
        self.code = code
        self.message_en = message_en
        self.message_vi = message_vi
        self.headers = headers or {}
        self.details = details or {}

    def body(self) -> dict[str, Any]:
        err: dict[str, Any] = {"code": self.code, "message": self.message_en, "message_vi": self.message_vi}
        if self.details:
            err["details"] = self.details
        return {"error": err}


def not_found(what: str, what_vi: str) -> ApiError:
    return ApiError(404, "not_found", f"{what} not found", f"Không tìm thấy {what_vi}")
