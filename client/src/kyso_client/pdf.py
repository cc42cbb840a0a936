"""Signing PDFs through kyso's CSC API v2 with pyHanko (pyHanko's own CSC client speaks v1).

pyHanko asks the signer twice: first a dry run to size the signature placeholder — answered locally
with zero bytes of the largest size the key can produce, so the subscriber is asked only once — then
for real: only the digest of the CMS signed attributes leaves this process, the subscriber confirms
it in the kyso app, and ``signatures/signHash`` returns the signature.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable

from asn1crypto import algos
from asn1crypto import x509 as asn1_x509
from pyhanko.sign import signers
from pyhanko_certvalidator.registry import SimpleCertificateStore

from .integrator import Integrator

ECDSA_SHA256 = "1.2.840.10045.4.3.2"


class KysoCscSigner(signers.Signer):
    def __init__(
        self,
        integrator: Integrator,
        credential_id: str,
        certificate_der: bytes,
        chain_der: list[bytes],
        confirm: Callable[[str], Awaitable[None]],
        description: str = "Ký tài liệu PDF / Sign a PDF",
    ) -> None:
        cert = asn1_x509.Certificate.load(certificate_der)
        super().__init__(
            signing_cert=cert,
            cert_registry=SimpleCertificateStore.from_certs(  # type: ignore[no-untyped-call]
                [asn1_x509.Certificate.load(c) for c in chain_der]
            ),
            signature_mechanism=algos.SignedDigestAlgorithm({"algorithm": "sha256_ecdsa"}),
        )
        self.integrator, self.credential_id = integrator, credential_id
        self.confirm, self.description = confirm, description
        self.calls: list[bool] = []

    async def async_sign_raw(self, data: bytes, digest_algorithm: str, dry_run: bool = False) -> bytes:
        self.calls.append(dry_run)
        if dry_run:
            return bytes(72 + 8)  # a DER ECDSA P-256 signature is at most 72 bytes
        if digest_algorithm != "sha256":
            raise ValueError("this signer uses SHA-256")
        digest = hashlib.sha256(data).digest()
        handle = await self.integrator.authorize(self.credential_id, [digest], self.description)
        await self.confirm(handle)  # the subscriber, in the kyso app
        sad = await self.integrator.wait_for_sad(handle)
        [signature] = await self.integrator.sign_hash(self.credential_id, sad, [digest], ECDSA_SHA256)
        return signature
