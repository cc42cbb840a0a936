"""OpenAPI an integrator can trust: every error response with the one error body, security declared.

Routes list the errors they answer with :func:`errors`; :func:`install` then makes the document
consistent: FastAPI's own 422 schema is replaced by ours, every operation behind the bearer scheme
documents 401, every operation with a body documents 400, every operation documents its framework
answers, and an operation marked :data:`OPTIONAL_BEARER` (its token is optional) says so with an
empty security requirement first (OpenAPI 3.1 §4.8.30: ``[{}, {"HTTPBearer": []}]``).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, Field


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable, machine-readable error code")
    message: str = Field(description="English message")
    message_vi: str = Field(description="Vietnamese message")
    details: dict[str, Any] | None = Field(default=None, description="Extra facts (field errors, retry time…)")


class ErrorBody(BaseModel):
    error: ErrorDetail


DESCRIPTIONS = {
    400: "Rejected: the content is wrong (a wrong code, a bad signature)",
    401: "Not signed in, or the credential is not fresh enough",
    403: "Signed in, but not allowed to act on this resource",
    404: "No such resource",
    409: "The resource is not in a state that allows this",
    413: "Too large: the request body, or a file in it",
    422: "The request breaks a rule of the schema or of the service",
    429: "Too many tries; see Retry-After",
    502: "A partner system failed; nothing was changed",
    503: "Not ready",
}


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` of a route that can answer these errors."""
    return {s: {"model": ErrorBody, "description": DESCRIPTIONS[s]} for s in statuses}


_OPTIONAL = "x-kyso-optional-bearer"
OPTIONAL_BEARER: dict[str, Any] = {_OPTIONAL: True}
"""``openapi_extra`` of a route whose bearer token is optional (``auth.optional_bearer_dependency``)."""


def document(app: FastAPI, *models: type[BaseModel]) -> None:
    """Put request models a route reads itself (its ``openapi_extra`` names them by ``$ref``, as the CSC
    routes that parse their own body do) into the document's components, so every ``$ref`` resolves."""
    listed: list[type[BaseModel]] = getattr(app.state, "documented_models", [])
    app.state.documented_models = listed + [m for m in models if m not in listed]


def install(app: FastAPI) -> None:
    def build() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes, tags=app.openapi_tags
        )
        ref = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
        for ops in schema.get("paths", {}).values():
            for op in ops.values():
                if op.pop(_OPTIONAL, False) and op.get("security") and {} not in op["security"]:
                    op["security"] = [{}, *op["security"]]  # anonymous, or with a token
                responses = op.setdefault("responses", {})
                if "422" in responses:
                    responses["422"] = {"description": DESCRIPTIONS[422], "content": ref}
                if op.get("security"):
                    responses.setdefault("401", {"description": DESCRIPTIONS[401], "content": ref})
                if "requestBody" in op:  # a body that cannot even be decoded (not UTF-8) is refused before parsing
                    responses.setdefault(
                        "400", {"description": DESCRIPTIONS[400] + "; or an unreadable body", "content": ref}
                    )
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for model in getattr(app.state, "documented_models", []):
            rendered = model.model_json_schema(ref_template="#/components/schemas/{model}")
            for name, definition in rendered.pop("$defs", {}).items():
                components.setdefault(name, definition)
            components.setdefault(model.__name__, rendered)
        for unused in ("HTTPValidationError", "ValidationError"):
            components.pop(unused, None)
        components.setdefault("ErrorBody", ErrorBody.model_json_schema(ref_template="#/components/schemas/{model}"))
        components.setdefault("ErrorDetail", ErrorDetail.model_json_schema())
        if "$defs" in components["ErrorBody"]:
            components["ErrorBody"].pop("$defs")
        app.openapi_schema = schema
        return schema

    app.openapi = build  # type: ignore[method-assign]
