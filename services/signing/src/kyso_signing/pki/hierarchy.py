"""What the service is told about its CA hierarchy (``Hierarchy``, from settings), the names of the CA's
own keys in the ``authority`` collection, and a fresh root and issuing CA for ``kyso-ca`` and development."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from kyso_kit.clock import Clock
from kyso_kit.crypto import SecretBox
from kyso_signing.pki import keys as pki
from kyso_signing.pki import profiles
from kyso_signing.pki.keys import KeyAlgorithm
from kyso_signing.settings import DEV_TAX_CODE

ROOT, ISSUING, RESPONDER, SEAL, TSA = "root-ca", "issuing-ca", "ocsp-responder", "provider-seal", "timestamp-authority"


def aad(name: str) -> str:
    return f"authority:{name}"


@dataclass(frozen=True)
class Hierarchy:
    """What the service is told about its CA (from settings)."""

    organisation: str
    root_common_name: str
    issuing_common_name: str
    urls: profiles.Urls
    policy_oid: str
    responder_validity: timedelta
    tax_code: str = DEV_TAX_CODE
    root_certificate_pem: str | None = None
    root_key_sealed: str | None = None
    issuing_certificate_pem: str | None = None
    issuing_key_sealed: str | None = None


def new_hierarchy(box: SecretBox, h: Hierarchy, clock: Clock) -> dict[str, dict[str, Any]]:
    """A fresh root (P-384) and issuing CA (P-256), keys sealed under ``box``."""
    at = clock.now()
    root_key = pki.new_key(KeyAlgorithm.ECDSA_P384)
    root = profiles.root_ca(root_key, profiles.ca_name(h.root_common_name, h.organisation), at)
    ca_key = pki.new_key(KeyAlgorithm.ECDSA_P256)
    ca = profiles.issuing_ca(
        ca_key.public_key(),
        profiles.ca_name(h.issuing_common_name, h.organisation),
        root_key,
        root,
        h.urls,
        h.policy_oid,
        at,
    )
    return {
        ROOT: {"key": box.seal(pki.key_to_der(root_key), aad(ROOT)), "certificate_pem": pki.pem(root)},
        ISSUING: {"key": box.seal(pki.key_to_der(ca_key), aad(ISSUING)), "certificate_pem": pki.pem(ca)},
    }
