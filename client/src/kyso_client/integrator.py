"""A relying party's SDK: OAuth client credentials, the SmartCA-style signing requests, and the CSC
API v2 (``/csc/v2``) — what an e-invoice or e-contract portal calls to get documents signed."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import httpx


class CscError(Exception):
    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(f"{status} {error}: {description}")
        self.status, self.error, self.description = status, error, description


class Integrator:
    def __init__(
        self,
        signing_url: str,
        client_id: str,
        client_secret: str,
        timeout: float = 30,
        correlation_id: str | None = None,
    ) -> None:
        self.base = signing_url.rstrip("/")
        self.client_id, self.client_secret = client_id, client_secret
        headers = {"X-Correlation-Id": correlation_id} if correlation_id else {}
        self.http = httpx.AsyncClient(timeout=timeout, headers=headers)
        self.token: str | None = None

    async def aclose(self) -> None:
        await self.http.aclose()

    async def token_endpoint(self) -> str:
        """Where the token endpoint is, as a generic CSC client finds it: ``info.oauth2`` (CSC v2 §11.1)
        is the OAuth 2.0 server's base URI, and the endpoint is ``{oauth2}oauth2/token``."""
        r = await self.http.post(f"{self.base}/csc/v2/info", json={})
        r.raise_for_status()
        return str(r.json()["oauth2"]) + "oauth2/token"

    async def authenticate(self) -> str:
        """OAuth 2.0 client credentials with HTTP Basic (and nothing in the form: one method only)."""
        r = await self.http.post(
            f"{self.base}/v1/oauth2/token",
            data={"grant_type": "client_credentials"},
            auth=(self.client_id, self.client_secret),
        )
        r.raise_for_status()
        self.token = str(r.json()["access_token"])
        return self.token

    def _auth(self) -> dict[str, str]:
        if not self.token:
            raise RuntimeError("authenticate first")
        return {"Authorization": f"Bearer {self.token}"}

    # ------------------------------------------------------------------ SmartCA style

    async def submit(
        self,
        documents: list[tuple[str, bytes]],
        *,
        description: str,
        user_id: str | None = None,
        credential_id: str | None = None,
        hash_algorithm: str = "sha256",
    ) -> dict[str, Any]:
        """Ask the subscriber to sign ``documents`` — (label, digest) pairs; they confirm in the kyso app."""
        body: dict[str, Any] = {
            "description": description,
            "documents": [
                {"label": label, "hash": base64.b64encode(d).decode(), "hash_algorithm": hash_algorithm}
                for label, d in documents
            ],
        }
        if user_id:
            body["user_id"] = user_id
        if credential_id:
            body["credential_id"] = credential_id
        r = await self.http.post(f"{self.base}/v1/signing-requests", json=body, headers=self._auth())
        if r.status_code != 202:
            raise RuntimeError(f"{r.status_code} {r.text}")
        return dict(r.json())

    async def submit_pdf(
        self,
        pdf: bytes,
        label: str,
        *,
        description: str,
        user_id: str | None = None,
        credential_id: str | None = None,
        level: str = "B-LTA",
        reason: str | None = None,
    ) -> httpx.Response:
        """Ask the subscriber to sign a whole PDF (PAdES ``level``); the raw answer (202, or the error)."""
        body: dict[str, Any] = {
            "description": description,
            "label": label,
            "pdf_base64": base64.b64encode(pdf).decode(),
            "level": level,
        }
        for name, value in (("user_id", user_id), ("credential_id", credential_id), ("reason", reason)):
            if value:
                body[name] = value
        return await self.http.post(f"{self.base}/v1/signing-requests/pdf", json=body, headers=self._auth())

    async def signed_pdf(self, request_id: str) -> bytes:
        r = await self.http.get(f"{self.base}/v1/signing-requests/{request_id}/pdf", headers=self._auth())
        r.raise_for_status()
        return r.content

    async def request(self, request_id: str) -> dict[str, Any]:
        r = await self.http.get(f"{self.base}/v1/signing-requests/{request_id}", headers=self._auth())
        r.raise_for_status()
        return dict(r.json())

    async def wait_until_done(self, request_id: str, timeout: float = 60, every: float = 0.25) -> dict[str, Any]:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            out = await self.request(request_id)
            if out["status"] != "waiting_for_user_confirm" or asyncio.get_running_loop().time() > deadline:
                return out
            await asyncio.sleep(every)

    # ------------------------------------------------------------------ CSC API v2

    async def csc(self, method: str, body: dict[str, Any] | None = None, *, auth: bool = True) -> tuple[int, Any]:
        r = await self.http.post(f"{self.base}/csc/v2/{method}", json=body or {}, headers=self._auth() if auth else {})
        out = r.json()
        if r.status_code >= 400:
            raise CscError(r.status_code, out.get("error", ""), out.get("error_description", ""))
        return r.status_code, out

    async def authorize(self, credential_id: str, digests: list[bytes], description: str) -> str:
        """``credentials/authorize`` for exactly these digests: a handle; the subscriber is asked in the app."""
        status, out = await self.csc(
            "credentials/authorize",
            {
                "credentialID": credential_id,
                "numSignatures": len(digests),
                "hashes": [base64.b64encode(d).decode() for d in digests],
                "hashAlgorithmOID": "2.16.840.1.101.3.4.2.1",
                "authData": [{"id": "PIN"}, {"id": "OTP"}],
                "description": description,
            },
        )
        assert status == 202
        return str(out["handle"])

    async def wait_for_sad(self, handle: str, timeout: float = 60, every: float = 0.25) -> str:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            status, out = await self.csc("credentials/authorizeCheck", {"handle": handle})
            if status == 200:
                return str(out["SAD"])
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError("the subscriber did not confirm")
            await asyncio.sleep(every)

    async def sign_hash(
        self,
        credential_id: str,
        sad: str,
        digests: list[bytes],
        sign_algo: str,
        *,
        asynchronous: bool = False,
        response_uri: str | None = None,
    ) -> list[bytes]:
        """The signatures (the only way a CSC authorisation's signatures are given). ``response_uri``
        (asynchronous only) must be on an origin registered for this relying party."""
        body: dict[str, Any] = {
            "credentialID": credential_id,
            "SAD": sad,
            "hashes": [base64.b64encode(d).decode() for d in digests],
            "hashAlgorithmOID": "2.16.840.1.101.3.4.2.1",
            "signAlgo": sign_algo,
        }
        if asynchronous:
            body["operationMode"] = "A"
            if response_uri is not None:
                body["response_uri"] = response_uri
            _, out = await self.csc("signatures/signHash", body)
            _, out = await self.csc("signatures/signPolling", {"responseID": out["responseID"]})
        else:
            _, out = await self.csc("signatures/signHash", body)
        return [base64.b64decode(s) for s in out["signatures"]]


async def register_integrator(
    operator: Any,
    signing_url: str,
    name: str,
    webhook_url: str | None = None,
    correlation_id: str | None = None,
    allowed_origins: list[str] | None = None,
) -> tuple[Integrator, str]:
    """What an operator does for a new integrator (``operator`` is a signed-in ``KysoApi`` with the
    operator role), and the integrator's first sign-in; the integrator and its webhook key.
    ``allowed_origins``: the only origins kyso will call for it (default: the webhook URL's)."""
    body: dict[str, Any] = {"name": name, "webhook_url": webhook_url}
    if allowed_origins is not None:
        body["allowed_origins"] = allowed_origins
    created = await operator.call(
        "POST", f"{signing_url.rstrip('/')}/v1/operator/relying-parties", auth=True, json=body
    )
    rp = Integrator(signing_url, created["client_id"], created["client_secret"], correlation_id=correlation_id)
    await rp.authenticate()
    return rp, str(created["webhook_secret"])
