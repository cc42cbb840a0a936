"""Signing a digest the relying party computed: which algorithms a key offers (as the OIDs the CSC API
and pyHanko expect), the hash length each needs, and the signature itself (the key never sees the
document, only its digest)."""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass

from asn1crypto import algos
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from kyso_signing.pki.keys import KeyAlgorithm, PrivateKey

HashName = str  # "sha256" | "sha384" | "sha512"


@dataclass(frozen=True)
class Hash:
    name: HashName
    oid: str
    size: int

    def algorithm(self) -> hashes.SHA256 | hashes.SHA384 | hashes.SHA512:
        if self.name == "sha384":
            return hashes.SHA384()
        if self.name == "sha512":
            return hashes.SHA512()
        return hashes.SHA256()


HASHES = {
    "sha256": Hash("sha256", "2.16.840.1.101.3.4.2.1", 32),
    "sha384": Hash("sha384", "2.16.840.1.101.3.4.2.2", 48),
    "sha512": Hash("sha512", "2.16.840.1.101.3.4.2.3", 64),
}
HASH_BY_OID = {h.oid: h for h in HASHES.values()}

ECDSA_WITH = {"sha256": "1.2.840.10045.4.3.2", "sha384": "1.2.840.10045.4.3.3", "sha512": "1.2.840.10045.4.3.4"}
ECDSA_BY_OID = {oid: HASHES[name] for name, oid in ECDSA_WITH.items()}
RSASSA_PSS = "1.2.840.113549.1.1.10"


def signature_algorithms(key: KeyAlgorithm) -> list[str]:
    """The signature-algorithm OIDs a key offers (CSC ``key/algo``)."""
    if key == KeyAlgorithm.RSA_3072_PSS:
        return [RSASSA_PSS]
    return list(ECDSA_WITH.values())


def signature_algorithm(key: KeyAlgorithm, h: Hash) -> str:
    return RSASSA_PSS if key == KeyAlgorithm.RSA_3072_PSS else ECDSA_WITH[h.name]


def pss_params(h: Hash) -> bytes:
    """DER RSASSA-PSS-params (RFC 4055): the hash, MGF1 with the same hash, salt = digest length."""
    digest = algos.DigestAlgorithm({"algorithm": h.name})
    der: bytes = algos.RSASSAPSSParams(
        {
            "hash_algorithm": digest,
            "mask_gen_algorithm": algos.MaskGenAlgorithm({"algorithm": "mgf1", "parameters": digest}),
            "salt_length": h.size,
            "trailer_field": "trailer_field_bc",
        }
    ).dump()
    return der


def hash_of_pss_params(der: bytes) -> Hash:
    """The hash named by RSASSA-PSS-params, if they are exactly what we sign with; ValueError otherwise."""
    try:
        p = algos.RSASSAPSSParams.load(der)
        name = p["hash_algorithm"]["algorithm"].native
        mgf_hash = p["mask_gen_algorithm"]["parameters"]["algorithm"].native
        salt = p["salt_length"].native
    except Exception as exc:
        raise ValueError("unreadable RSASSA-PSS parameters") from exc
    h = HASHES.get(name)
    if h is None or p["mask_gen_algorithm"]["algorithm"].native != "mgf1" or mgf_hash != name or salt != h.size:
        raise ValueError("unsupported RSASSA-PSS parameters")
    return h


_B64 = re.compile(r"^[A-Za-z0-9+/_-]+={0,2}$")


def decode_hash(text: str, h: Hash) -> bytes:
    """A digest in base64 or base64url (both are in use; normalised to bytes), of the algorithm's length."""
    if not isinstance(text, str) or not _B64.match(text):
        raise ValueError("not base64")
    normal = text.replace("-", "+").replace("_", "/")
    try:
        raw = base64.b64decode(normal + "=" * (-len(normal) % 4), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("not base64") from exc
    if len(raw) != h.size:
        raise ValueError(f"a {h.name} digest is {h.size} bytes, this is {len(raw)}")
    return raw


def sign_digest(key: PrivateKey, digest: bytes, h: Hash) -> bytes:
    """ECDSA (DER signature) or RSASSA-PSS over a precomputed digest."""
    if len(digest) != h.size:
        raise ValueError("digest length does not match its algorithm")
    if isinstance(key, rsa.RSAPrivateKey):
        return key.sign(
            digest, padding.PSS(mgf=padding.MGF1(h.algorithm()), salt_length=h.size), Prehashed(h.algorithm())
        )
    return key.sign(digest, ec.ECDSA(Prehashed(h.algorithm())))
