"""How a PDF leaves the service over HTTP: its OpenAPI description and the response itself."""

from __future__ import annotations

import hashlib
from typing import Any

from fastapi.responses import Response

PDF_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {"content": {"application/pdf": {"schema": {"type": "string", "format": "binary"}}}, "description": "PDF"}
}


def pdf_response(data: bytes, filename: str) -> Response:
    """An attachment with its SHA-256 as ETag; private to the caller, never cached by intermediaries."""
    headers = {
        "Content-Disposition": f'attachment; filename="{filename}"',
        "ETag": f'"{hashlib.sha256(data).hexdigest()}"',
        "Cache-Control": "private, no-store",
    }
    return Response(data, media_type="application/pdf", headers=headers)
