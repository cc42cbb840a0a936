"""HTTP conventions shared by every service: error bodies, correlation ids, /health and /ready."""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel
from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kyso_contracts.types import FIELD_ERRORS

from .errors import (
    Conflict,
    DomainError,
    Forbidden,
    Invalid,
    NotFound,
    Rejected,
    TooLarge,
    TooMany,
    Unauthenticated,
    Upstream,
)
from .logs import correlation_id
from .metrics import HttpMetricsMiddleware, Metrics

CORRELATION_HEADER = "X-Correlation-Id"


STATUS_OF: dict[type[DomainError], int] = {
    Rejected: 400,
    Unauthenticated: 401,
    Forbidden: 403,
    NotFound: 404,
    Conflict: 409,
    TooLarge: 413,
    Invalid: 422,
    TooMany: 429,
    Upstream: 502,
}
"""The one place a domain error becomes an HTTP status."""

_FRAMEWORK: dict[int, tuple[str, str, str]] = {
    400: ("bad_request", "The request is malformed", "Yêu cầu không đúng định dạng"),
    404: ("not_found", "No such path", "Không tìm thấy đường dẫn"),
    405: ("method_not_allowed", "This method is not allowed on this path", "Phương thức không được hỗ trợ"),
    413: ("payload_too_large", "The request is too large", "Yêu cầu quá lớn"),
    415: ("unsupported_media_type", "Unsupported content type", "Kiểu nội dung không được hỗ trợ"),
}


def status_of(exc: DomainError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS_OF:
            return STATUS_OF[cls]  # type: ignore[index]
    return 400


def error_response(exc: DomainError) -> JSONResponse:
    headers: dict[str, str] = {}
    if isinstance(exc, TooMany):
        headers["Retry-After"] = str(exc.retry_after)
    if isinstance(exc, Unauthenticated):
        headers["WWW-Authenticate"] = exc.challenge
    return JSONResponse(exc.body(), status_code=status_of(exc), headers=headers)


DEFAULT_BODY_LIMIT = 1024 * 1024


class BodyLimitMiddleware:
    """Answers 413 ``payload_too_large`` for a request body over the limit *before* the app reads it:
    by its Content-Length, or — for a chunked body — by counting while buffering at most the limit.
    Limits are per exact path (``limits``), ``default`` elsewhere."""

    def __init__(self, app: ASGIApp, default: int = DEFAULT_BODY_LIMIT, limits: dict[str, int] | None = None) -> None:
        self.app, self.default, self.limits = app, default, limits or {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limits.get(scope["path"], self.default)
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None:
            if length.isdigit() and int(length) > limit:
                await _too_large(scope, receive, send, limit)
                return
            await self.app(scope, receive, send)
            return
        messages: list[Message] = []
        size = 0
        while True:  # no length announced: buffer up to the limit, then replay
            message = await receive()
            messages.append(message)
            size += len(message.get("body", b""))
            if size > limit:
                await _too_large(scope, receive, send, limit)
                return
            if message["type"] != "http.request" or not message.get("more_body"):
                break
        replay = iter(messages)

        async def again() -> Message:
            return next(replay, None) or await receive()

        await self.app(scope, again, send)


async def _too_large(scope: Scope, receive: Receive, send: Send, limit: int) -> None:
    code, en, vi = _FRAMEWORK[413]
    err = DomainError(code, f"{en} (at most {limit} bytes)", vi, details={"limit_bytes": limit})
    await JSONResponse(err.body(), status_code=413, headers={"Connection": "close"})(scope, receive, send)


def install_conventions(
    app: FastAPI,
    ready: Callable[[], Awaitable[dict[str, bool]]],
    metrics: Metrics,
    body_limits: dict[str, int] | None = None,
) -> None:
    @app.exception_handler(DomainError)
    async def _domain_error(_: Request, exc: DomainError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        details = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")} for e in exc.errors()
        ]
        field_codes = [d["type"] for d in details if d["type"] in FIELD_ERRORS]
        if any(d["type"] == "json_invalid" for d in details):
            code, en, vi = (
                "malformed_json",
                "The request body is not valid JSON",
                "Nội dung yêu cầu không phải JSON hợp lệ",
            )
        elif field_codes and len(field_codes) == len(details):
            code, (en, vi) = field_codes[0], FIELD_ERRORS[field_codes[0]]
        else:
            code, en, vi = "invalid_request", "The request is invalid", "Yêu cầu không hợp lệ"
        err = DomainError(code, en, vi, details={"errors": details})
        return JSONResponse(err.body(), status_code=422)

    allowed = AllowedMethods(app)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        # Keep what the framework says in headers; a 405's Allow names every method of the path (the router
        # only names those of the first route it matched, and a path may have a route per method).
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            return method_not_allowed(allowed.of(request.url.path), headers)
        code, en, vi = _FRAMEWORK.get(exc.status_code, ("http_error", str(exc.detail), "Lỗi yêu cầu HTTP"))
        return JSONResponse(DomainError(code, en, vi).body(), status_code=exc.status_code, headers=headers)

    app.add_middleware(ConcretePathMiddleware, allowed=allowed)
    app.add_middleware(BodyLimitMiddleware, limits=body_limits)
    app.add_middleware(CorrelationIdMiddleware)
    app.add_middleware(HttpMetricsMiddleware, metrics=metrics)

    @app.get(
        "/metrics",
        tags=["ops"],
        response_class=PlainTextResponse,
        responses={200: {"content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}}, "description": "Metrics"}},
    )
    async def prometheus_metrics() -> PlainTextResponse:
        """Prometheus text exposition of this process's metrics."""
        return PlainTextResponse(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/health", tags=["ops"], response_model=Health)
    async def health() -> Health:
        return Health(status="alive")

    @app.get("/ready", tags=["ops"], response_model=Readiness, responses={503: {"model": Readiness}})
    async def ready_endpoint() -> JSONResponse:
        checks = await ready()
        ok = all(checks.values())
        return JSONResponse({"ready": ok, "checks": checks}, status_code=200 if ok else 503)


def method_not_allowed(allow: set[str], headers: dict[str, str] | None = None) -> JSONResponse:
    code, en, vi = _FRAMEWORK[405]
    out = dict(headers or {})
    if allow:
        out["Allow"] = ", ".join(sorted(allow))
    return JSONResponse(DomainError(code, en, vi).body(), status_code=405, headers=out)


class AllowedMethods:
    """The methods of the path item a request path belongs to, by the OpenAPI rule (3.1 §4.8.8): a
    concrete path is matched before a templated one, so ``/v1/signing-requests/pdf`` is its own path
    item and not also ``/v1/signing-requests/{request_id}``. Among templated paths, the one with a
    literal segment where another has a parameter (reading from the left) is the more specific."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self._paths: list[tuple[tuple[bool, ...], re.Pattern[str], set[str]]] | None = None
        self._concrete: dict[str, set[str]] | None = None

    def _documented(self) -> list[tuple[tuple[bool, ...], re.Pattern[str], set[str]]]:
        if self._paths is None:  # made once, from the OpenAPI document, after every router is included
            self._paths = [
                (tuple(seg.startswith("{") for seg in p.split("/")), compile_path(p)[0], {m.upper() for m in ops})
                for p, ops in self.app.openapi()["paths"].items()
            ]
        return self._paths

    def of(self, path: str) -> set[str]:
        """The documented methods of ``path``'s own path item (empty: no documented path matches)."""
        matching = [(key, methods) for key, rx, methods in self._documented() if rx.match(path)]
        if not matching:
            return set()
        best = min(key for key, _ in matching)
        return {m for key, methods in matching if key == best for m in methods}

    def concrete(self, path: str) -> set[str] | None:
        """The documented methods of ``path`` when it is itself a documented concrete path (no
        parameter), else None."""
        if self._concrete is None:
            self._concrete = {
                p: {m.upper() for m in ops} for p, ops in self.app.openapi()["paths"].items() if "{" not in p
            }
        return self._concrete.get(path)


class ConcretePathMiddleware:
    """A method a documented concrete path does not have is 405 there, with that path's ``Allow``, even
    when a templated sibling would take it (Starlette tries routes in order: ``GET
    /v1/signing-requests/pdf`` would reach ``GET /v1/signing-requests/{request_id}``). What the OpenAPI
    document says a path answers is then what it answers. Undocumented paths (``/docs``) are left to
    the router."""

    def __init__(self, app: ASGIApp, allowed: AllowedMethods) -> None:
        self.app, self.allowed = app, allowed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            own = self.allowed.concrete(scope["path"])
            if own is not None and scope["method"].upper() not in own:
                await method_not_allowed(own)(scope, receive, send)
                return
        await self.app(scope, receive, send)


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    ready: bool
    checks: dict[str, bool]


class CorrelationIdMiddleware:
    """Pure ASGI (cheaper than BaseHTTPMiddleware): adopt or mint a correlation id, echo it back."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cid = Headers(scope=scope).get(CORRELATION_HEADER) or ""
        if not cid or len(cid) > 128:
            cid = str(uuid.uuid4())

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)[CORRELATION_HEADER] = cid
            await send(message)

        token = correlation_id.set(cid)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            correlation_id.reset(token)
