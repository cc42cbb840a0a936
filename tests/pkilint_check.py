"""Lint certificates, CRLs and OCSP responses with pkilint (the independent RFC 5280 / RFC 6960 linter),
in-process through its own command-line entry points. A finding of WARNING or worse fails; the ETSI
linter (EN 319 412) reports at the severity a test asks for."""

from __future__ import annotations

import contextlib
import io
import tempfile
from pathlib import Path

from pkilint.bin import lint_crl, lint_etsi_cert, lint_ocsp_response, lint_pkix_cert


def _run(main: object, args: list[str], der: bytes, severity: str = "WARNING") -> str:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "doc.der"
        path.write_bytes(der)
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = main([*args, "-s", severity, "--document-format", "DER", str(path)])  # type: ignore[operator]
    text = out.getvalue().strip()
    return "" if code == 0 and not text else text or f"exit code {code}"


def certificate_findings(der: bytes) -> str:
    return _run(lint_pkix_cert.main, ["lint"], der)


def crl_findings(der: bytes, *, arl: bool = False) -> str:
    return _run(lint_crl.main, ["lint", "-t", "ARL" if arl else "CRL", "-p", "PKIX"], der)


def ocsp_findings(der: bytes) -> str:
    return _run(lint_ocsp_response.main, ["lint"], der)


def etsi_findings(der: bytes, cert_type: str, severity: str = "WARNING") -> str:
    """ETSI EN 319 412 findings for ``cert_type`` (e.g. ``NCP-LEGAL-PERSON-CERTIFICATE``)."""
    return _run(lint_etsi_cert.main, ["lint", "-t", cert_type], der, severity)
