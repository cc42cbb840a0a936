"""AdES validation (ETSI EN 319 102-1) of a PDF signature with pyHanko, local revocation data only:
trust just the given root, know just the given certificates and CRLs, never fetch."""

from __future__ import annotations

import asyncio
from datetime import datetime
from io import BytesIO
from typing import Any

from asn1crypto import crl as asn1_crl
from asn1crypto import x509 as asn1_x509
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation.ades import ades_lta_validation
from pyhanko.sign.validation.policy_decl import (
    LocalKnowledge,
    PdfSignatureValidationSpec,
    RevinfoOnlineFetchingRule,
    RevocationInfoGatheringSpec,
    SignatureValidationSpec,
)
from pyhanko_certvalidator.context import CertValidationPolicySpec
from pyhanko_certvalidator.ltv.types import ValidationTimingInfo
from pyhanko_certvalidator.policy_decl import REQUIRE_REVINFO, CertRevTrustPolicy
from pyhanko_certvalidator.registry import SimpleTrustManager
from pyhanko_certvalidator.revinfo.archival import CRLContainer


def ades_indications(
    pdf: bytes, root_der: bytes, issuing_der: bytes, crls_der: list[bytes], at: datetime | None = None
) -> list[Any]:
    """The AdES-LTA indication of every signature (not document timestamps) in ``pdf``, validated
    ``at`` (default: now)."""
    timing = ValidationTimingInfo(at, at, False) if at is not None else None
    policy = CertValidationPolicySpec(
        trust_manager=SimpleTrustManager.build(trust_roots=[asn1_x509.Certificate.load(root_der)]),
        revinfo_policy=CertRevTrustPolicy(REQUIRE_REVINFO),
    )
    spec = PdfSignatureValidationSpec(
        SignatureValidationSpec(
            cert_validation_policy=policy,
            revinfo_gathering_policy=RevocationInfoGatheringSpec(
                online_fetching_rule=RevinfoOnlineFetchingRule.LOCAL_ONLY
            ),
            local_knowledge=LocalKnowledge(
                known_certs=[asn1_x509.Certificate.load(issuing_der)],
                known_crls=[CRLContainer(asn1_crl.CertificateList.load(c)) for c in crls_der],
            ),
        )
    )
    reader = PdfFileReader(BytesIO(pdf))

    async def run() -> list[Any]:
        out = []
        for sig in reader.embedded_signatures:
            if sig.sig_object_type == "/Sig":
                result = await ades_lta_validation(sig, spec, timing_info=timing)
                out.append(result.ades_subindic)
        return out

    return asyncio.run(run())
