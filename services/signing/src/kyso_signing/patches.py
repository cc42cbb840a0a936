"""Third-party monkeypatches, applied once, here, at start-up (``bootstrap.build`` and the test session).

Each one keeps the library's output byte for byte and only removes a cost; each has a test that renders or
dumps both ways, and one that fails when the patched upstream code changes (``tests/unit/test_patches.py``),
so an upgrade is a decision, not a surprise:

- asn1crypto 1.5.1 re-encodes any structure whose definite length ends in 0x80 (``pki/asn1_fix.py``);
- fpdf2 2.8.9 measures a growing line in quadratic time (``documents/fpdf_fix.py``).
"""

from __future__ import annotations

from kyso_signing.documents import fpdf_fix
from kyso_signing.pki import asn1_fix


def apply() -> None:
    """Apply every patch (idempotent)."""
    asn1_fix.apply()
    fpdf_fix.fast_line_widths(True)
