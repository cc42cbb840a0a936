"""Well-known development secrets. Used only when ``KYSO_PROFILE=development`` and nothing is configured;
production refuses to start without real values."""

from __future__ import annotations

import base64
import hashlib


def dev_master_key(purpose: str) -> str:
    """A deterministic, publicly known 32-byte key per purpose: fine for a laptop, never for production."""
    return base64.b64encode(hashlib.sha256(f"kyso-development-only:{purpose}".encode()).digest()).decode()
