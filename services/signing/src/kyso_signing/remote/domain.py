"""A signing request, as the relying party names it and as it moves: its statuses (waiting for the
subscriber, then signed, rejected or expired; no way back), the documents it binds (1–50 digests) and the
digest the one-time code is computed over."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from kyso_contracts.transactions import DocumentsTransaction
from kyso_kit.errors import Conflict, Invalid
from kyso_signing.pki import signer

WAITING, SIGNED, REJECTED, EXPIRED = "waiting_for_user_confirm", "signed", "rejected", "expired"
MAX_DOCUMENTS = 50


@dataclass(frozen=True)
class Document:
    label: str
    hash: str  # base64 or base64url as sent
    hash_algorithm: str  # sha256 | sha384 | sha512


def checked_documents(docs: list[Document]) -> tuple[list[dict[str, Any]], list[bytes]]:
    if not 1 <= len(docs) <= MAX_DOCUMENTS:
        raise Invalid(
            "too_many_documents",
            f"A request signs 1 to {MAX_DOCUMENTS} documents",
            f"Mỗi yêu cầu ký từ 1 đến {MAX_DOCUMENTS} tài liệu",
        )
    out, raw = [], []
    for d in docs:
        h = signer.HASHES.get(d.hash_algorithm)
        if h is None:
            raise Invalid("unsupported_hash_algorithm", "Use sha256, sha384 or sha512", "Thuật toán băm không hỗ trợ")
        try:
            digest = signer.decode_hash(d.hash, h)
        except ValueError as exc:
            raise Invalid("invalid_hash", f"{d.label}: {exc}", "Giá trị băm không hợp lệ") from None
        raw.append(digest)
        out.append({"label": d.label, "hash_b64": base64.b64encode(digest).decode(), "hash_algorithm": h.name})
    return out, raw


def documents_digest(raw: list[bytes]) -> str:
    """What the transaction-bound OTP is computed over (``kyso_contracts.transactions``)."""
    return DocumentsTransaction(document_hashes=[r.hex() for r in raw]).digest()


def wrong_state(doc: dict[str, Any]) -> Conflict:
    return Conflict(
        f"request_{doc['status']}",
        f"The signing request is {doc['status'].replace('_', ' ')}",
        "Yêu cầu ký không còn chờ xác nhận",
    )
