"""Keys and signatures: the algorithms Circular 15/2025 allows (ECDSA ≥ 256 bits, RSA ≥ 2048 with PSS,
SHA-2), loaded once and cached (``cryptography`` re-validates an RSA key on every load, ~40 ms)."""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from datetime import datetime
from enum import StrEnum
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
PublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey

MAX_SUBSCRIBER_YEARS = 3  # Decree 23/2025


class KeyAlgorithm(StrEnum):
    """What a subscriber's key is; the order records the choice."""

    ECDSA_P256 = "ecdsa-p256"
    ECDSA_P384 = "ecdsa-p384"
    RSA_3072_PSS = "rsa-3072-pss"


def new_key(algorithm: KeyAlgorithm = KeyAlgorithm.ECDSA_P256) -> PrivateKey:
    if algorithm == KeyAlgorithm.ECDSA_P256:
        return ec.generate_private_key(ec.SECP256R1())
    if algorithm == KeyAlgorithm.ECDSA_P384:
        return ec.generate_private_key(ec.SECP384R1())
    return rsa.generate_private_key(public_exponent=65537, key_size=3072)


def algorithm_of(key: PrivateKey | PublicKey) -> KeyAlgorithm:
    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        return KeyAlgorithm.ECDSA_P384 if key.curve.key_size >= 384 else KeyAlgorithm.ECDSA_P256
    return KeyAlgorithm.RSA_3072_PSS


def digest_for(key: PrivateKey | PublicKey) -> hashes.SHA256 | hashes.SHA384:
    """The hash a key signs with: SHA-384 for P-384, SHA-256 otherwise."""
    return hashes.SHA384() if algorithm_of(key) == KeyAlgorithm.ECDSA_P384 else hashes.SHA256()


def pss(digest: hashes.SHA256 | hashes.SHA384) -> padding.PSS:
    """RSASSA-PSS with MGF1 over the same hash and a salt as long as the digest (RFC 4055 / RFC 8017)."""
    return padding.PSS(mgf=padding.MGF1(digest), salt_length=digest.digest_size)


def key_to_der(key: PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


_LOADED: OrderedDict[bytes, PrivateKey] = OrderedDict()
_LOADED_MAX = 4096


def key_from_der(der: bytes, *, keep: bool = True) -> PrivateKey:
    """The key in ``der``. Service keys (CA, responder, TSA, seal) are kept loaded, by a digest of their
    DER, so a hot key loads once; a subscriber's key unsealed by a PIN is loaded with ``keep=False`` and
    lives only as long as the signing that needed it (once per batch, ~40 ms for RSA)."""
    tag = hashlib.sha256(der).digest()
    key = _LOADED.get(tag)
    if key is not None:
        _LOADED.move_to_end(tag)
        return key
    loaded = serialization.load_der_private_key(der, password=None)
    if not isinstance(loaded, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise ValueError("unsupported key type")
    if keep:
        _LOADED[tag] = loaded
        if len(_LOADED) > _LOADED_MAX:
            _LOADED.popitem(last=False)
    return loaded


def public_key_pem(key: PrivateKey | PublicKey) -> str:
    public = key.public_key() if isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) else key
    return public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def spki_sha256(key: PrivateKey | PublicKey) -> str:
    """Hex SHA-256 of the SubjectPublicKeyInfo: what makes "a public key is never certified twice" checkable."""
    public = key.public_key() if isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) else key
    der = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


def pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def sign(key: PrivateKey, data: bytes) -> bytes:
    """A signature over ``data``: ECDSA with SHA-256/384, or RSASSA-PSS with SHA-256 for RSA keys."""
    digest = digest_for(key)
    if isinstance(key, rsa.RSAPrivateKey):
        return key.sign(data, pss(digest), digest)
    return key.sign(data, ec.ECDSA(digest))


def verify(public: PublicKey, signature: bytes, data: bytes) -> None:
    """Raises ``cryptography.exceptions.InvalidSignature`` when ``signature`` is not over ``data``."""
    digest = digest_for(public)
    if isinstance(public, rsa.RSAPublicKey):
        public.verify(signature, data, pss(digest), digest)
    else:
        public.verify(signature, data, ec.ECDSA(digest))


def add_years(at: datetime, years: int) -> datetime:
    """The same calendar day ``years`` later; 29 February becomes 28 February (never longer than asked)."""
    try:
        return at.replace(year=at.year + years)
    except ValueError:
        return at.replace(year=at.year + years, day=28)


def new_serial() -> int:
    """RFC 5280 §4.1.2.2: positive, at most 20 octets; 159 random bits."""
    return x509.random_serial_number()


def serial_hex(serial: int) -> str:
    return format(serial, "x")


def load_certificate(pem_text: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pem_text.encode())


def public_key_of(cert: x509.Certificate) -> PublicKey:
    key: Any = cert.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey):
        raise ValueError("unsupported key type")
    return key  # type: ignore[no-any-return]
