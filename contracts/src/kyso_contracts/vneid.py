"""The VNeID → kyso identity hand-over contract (step 1 of the journey).

VNeID signs the identity object with ECDSA P-256 / SHA-256 over its canonical form below and sends
``{"identity": {...}, "signature_b64": "<base64 DER signature>"}``. Identity fields: ``citizen_id``
(12 digits), ``full_name``, ``date_of_birth`` (YYYY-MM-DD), ``eid_level`` (must be 2),
``certificate_type`` ("PERSONAL"), ``issued_at`` (RFC 3339, at most 10 minutes old), ``nonce``
(16–64 URL-safe characters, single use).
"""

from __future__ import annotations

import json
from typing import Any


def canonical_identity(identity: dict[str, Any]) -> bytes:
    """The exact bytes VNeID signs: sorted-key compact UTF-8 JSON."""
    return json.dumps(identity, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
