"""Independent checks of kyso's PAdES signatures.

- AdES validation (ETSI EN 319 102-1) of a PDF signature with pyHanko, local revocation data only:
  trust just the given root, know just the given certificates and CRLs, never fetch;
- the same with the EU DSS library (Java, tests/tools/dss), offline, the kyso root its only trust anchor;
- the long-term validation data a PDF carries, read from its bytes with asn1crypto (not with the code that
  wrote it): which revocation answer covers which certificate, and when each was issued."""

from __future__ import annotations

import asyncio
import hashlib
import json
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from io import BytesIO
from pathlib import Path
from typing import Any

from asn1crypto import crl as asn1_crl
from asn1crypto import ocsp as asn1_ocsp
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


# --------------------------------------------------------------------------- long-term validation data


DSS_TOOL = Path(__file__).parent / "tools" / "dss" / "run.sh"


def dss_reports(pdfs: dict[str, bytes], root_der: bytes, at: datetime | None, workdir: Path) -> dict[str, Any]:
    """The EU DSS library's verdict (tests/tools/dss: default policy, the kyso root as the only trust anchor,
    no online sources) on each PDF, in one JVM run: name → {"signatures": [...], "timestamps": [...]},
    each token with DSS's indication, subIndication, errors and warnings. Skips when Maven or Java is
    missing (run.sh exits 3); any other failure fails."""
    import pytest

    (workdir / "root.cer").write_bytes(root_der)
    args = [str(DSS_TOOL), str(workdir / "root.cer")]
    if at is not None:
        args += ["--at", at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")]
    names = {}
    for name, data in pdfs.items():
        path = workdir / (name.replace(" ", "-") + ".pdf")
        path.write_bytes(data)
        names[str(path)] = name
        args.append(str(path))
    run = subprocess.run(args, capture_output=True, text=True, timeout=600, check=False)
    if run.returncode == 3:
        pytest.skip(run.stderr.strip())
    assert run.returncode == 0, run.stderr[-3000:]
    out = {}
    for line in run.stdout.splitlines():
        if line.startswith("{"):
            report = json.loads(line)
            out[names[report["file"]]] = report
    assert set(out) == set(pdfs), run.stdout[-3000:]
    return out


@dataclass
class Revinfo:
    """What a PDF carries for long-term validation, read straight from its bytes with asn1crypto."""

    certs: list[asn1_x509.Certificate]
    ocsps: list[asn1_ocsp.OCSPResponse]
    crls: list[asn1_crl.CertificateList]

    def coverage(self) -> list[tuple[str, asn1_x509.Certificate, datetime]]:
        """(what, certificate, thisUpdate) for every certificate each embedded revocation answer speaks of:
        an OCSP single response covers the certificate its CertID names; a CRL covers every certificate
        of the document its issuer issued (RFC 5280 §5: a full CRL's scope is all of them)."""
        out = []
        for resp in self.ocsps:
            basic = resp["response_bytes"]["response"].parsed
            for single in basic["tbs_response_data"]["responses"]:
                cid = single["cert_id"]
                algo = cid["hash_algorithm"]["algorithm"].native
                matches = [
                    c
                    for c in self.certs
                    if c.serial_number == cid["serial_number"].native
                    and hashlib.new(algo, c.issuer.dump()).digest() == cid["issuer_name_hash"].native
                ]
                assert matches, f"an OCSP answer for serial {cid['serial_number'].native:x} whose certificate is absent"
                out += [("OCSP", c, single["this_update"].native) for c in matches]
        for crl in self.crls:
            tbs = crl["tbs_cert_list"]
            for c in self.certs:
                if c.issuer == tbs["issuer"] and c.issuer != c.subject:
                    out.append(("CRL", c, tbs["this_update"].native))
        return out

    def issued_before_certificate(self) -> list[str]:
        """Every revocation answer issued before the certificate it covers was (thisUpdate < notBefore)."""
        return [
            f"{what} of {when.isoformat()} for {c.subject.human_friendly} (notBefore {c.not_valid_before.isoformat()})"
            for what, c, when in self.coverage()
            if when < c.not_valid_before
        ]


def revinfo(pdf: bytes) -> Revinfo:
    """The certificates, OCSP responses and CRLs in ``pdf``'s document security store (/DSS, its VRI entries
    too) and in the CMS of every signature and timestamp (SignedData certificates and revocation choices,
    and Adobe's revocationInfoArchival attribute)."""
    reader = PdfFileReader(BytesIO(pdf), strict=False)
    certs: dict[bytes, asn1_x509.Certificate] = {}
    ocsps: dict[bytes, asn1_ocsp.OCSPResponse] = {}
    crls: dict[bytes, asn1_crl.CertificateList] = {}

    def streams(d: Any, key: str) -> list[bytes]:
        return [s.get_object().data for s in d[key]] if key in d else []

    if "/DSS" in reader.root:
        dss = reader.root["/DSS"]
        vris = list(dss["/VRI"].values()) if "/VRI" in dss else []
        for d in [dss, *[v.get_object() for v in vris]]:
            for der in streams(d, "/Certs") + streams(d, "/Cert"):
                certs[der] = asn1_x509.Certificate.load(der)
            for der in streams(d, "/OCSPs") + streams(d, "/OCSP"):
                ocsps[der] = asn1_ocsp.OCSPResponse.load(der)
            for der in streams(d, "/CRLs") + streams(d, "/CRL"):
                crls[der] = asn1_crl.CertificateList.load(der)

    def signed_data(sd: Any) -> None:
        for c in sd["certificates"] or []:
            if c.name == "certificate":
                certs[c.chosen.dump()] = c.chosen
        for r in sd["crls"] or []:
            if r.name == "crl":
                crls[r.chosen.dump()] = r.chosen
            elif r.chosen["other_rev_info_format"].native == "ocsp_response":
                ocsps[r.chosen["other_rev_info"].dump()] = asn1_ocsp.OCSPResponse.load(
                    r.chosen["other_rev_info"].dump()
                )
        for info in sd["signer_infos"]:
            for attr in [*(info["signed_attrs"] or []), *(info["unsigned_attrs"] or [])]:
                kind = attr["type"].native
                for value in attr["values"]:
                    if kind == "adobe_revocation_info_archival":
                        for c in value["crl"] or []:
                            crls[c.dump()] = c
                        for o in value["ocsp"] or []:
                            ocsps[o.dump()] = o
                    elif kind == "signature_time_stamp_token":
                        signed_data(value["content"])

    for sig in reader.embedded_signatures:
        signed_data(sig.signed_data)
    return Revinfo(list(certs.values()), list(ocsps.values()), list(crls.values()))
