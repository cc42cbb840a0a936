"""The VNeID → kyso identity hand-over contract (step 1 of the journey).

VNeID sends ``{"assertion": "<compact JWS>"}`` (RFC 7515): protected header ``{"alg": "ES256",
"typ": "JWT"}``, signed with VNeID's P-256 key; the payload is the identity as JSON:
``citizen_id`` (12 digits), ``full_name``, ``date_of_birth`` (YYYY-MM-DD), ``eid_level`` (must be 2),
``certificate_type`` ("PERSONAL"), ``issued_at`` (RFC 3339, at most 10 minutes old), ``nonce``
(16–64 URL-safe characters, single use). The signature covers the payload bytes exactly as sent.

VNeID asks for a citizen's certificate status the same way: ``{"assertion": "<compact JWS>"}`` whose
payload is ``{"query": "certificate_status", "citizen_id", "issued_at", "nonce"}`` (same key, same
freshness), posted to registration's ``/v1/vneid/status-queries``.
"""

from __future__ import annotations

JWS_ALGORITHM = "ES256"
STATUS_QUERY = "certificate_status"
