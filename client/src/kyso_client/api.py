"""Thin async HTTP client for the four services, raising :class:`KysoError` with the stable error code."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx

T = TypeVar("T")


class KysoError(Exception):
    def __init__(self, status: int, code: str, message: str, body: Any) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.body = body


@dataclass
class Endpoints:
    registration: str
    payment: str
    signing: str
    otp: str


KEEPALIVE_EXPIRY_SECONDS = 20.0


class KysoApi:
    def __init__(self, endpoints: Endpoints, correlation_id: str | None = None, timeout: float = 30.0) -> None:
        self.ep = endpoints
        headers = {"X-Correlation-Id": correlation_id} if correlation_id else {}
        # Idle connections are dropped before the server's keep-alive (KEEP_ALIVE_SECONDS in the kit)
        # would close them, so a reused connection is never closed under a request.
        self.http = httpx.AsyncClient(
            timeout=timeout, headers=headers, limits=httpx.Limits(keepalive_expiry=KEEPALIVE_EXPIRY_SECONDS)
        )
        self.token: str | None = None

    async def aclose(self) -> None:
        await self.http.aclose()

    async def call(self, method: str, url: str, *, auth: bool = False, **kw: Any) -> Any:
        headers = kw.pop("headers", {})
        if auth:
            if not self.token:
                raise RuntimeError("sign in first")
            headers["Authorization"] = f"Bearer {self.token}"
        try:
            resp = await self.http.request(method, url, headers=headers, **kw)
        except (httpx.RemoteProtocolError, httpx.ConnectError):
            if method not in ("GET", "HEAD"):
                raise  # not idempotent: the caller decides
            resp = await self.http.request(method, url, headers=headers, **kw)  # once, on a fresh connection
        if resp.status_code >= 400:
            try:
                body = resp.json()
                err = body.get("error", {})
                raise KysoError(resp.status_code, err.get("code", "unknown"), err.get("message", ""), body)
            except ValueError:
                raise KysoError(resp.status_code, "unknown", resp.text, resp.text) from None
        if resp.headers.get("content-type", "").startswith("application/json"):
            return resp.json()
        return resp.text

    # registration ---------------------------------------------------------
    async def vneid_register(self, assertion: str) -> Any:
        return await self.call(
            "POST",
            f"{self.ep.registration}/v1/vneid/registrations",
            json={"assertion": assertion},
        )

    async def vneid_status(self, assertion: str) -> Any:
        """VNeID's view of a citizen's certificates (a VNeID-signed status query)."""
        return await self.call("POST", f"{self.ep.registration}/v1/vneid/status-queries", json={"assertion": assertion})

    async def registration(self, reg_id: str, *, verified_phone: str | None = None, wait: float = 10) -> Any:
        """The registration; with ``verified_phone``, as soon as that phone shows as verified (long-poll)."""
        params = {"phone": verified_phone, "wait": wait} if verified_phone else None
        return await self.call("GET", f"{self.ep.registration}/v1/registrations/{reg_id}", params=params)

    async def confirm_registration(self, reg_id: str) -> Any:
        return await self.call("POST", f"{self.ep.registration}/v1/registrations/{reg_id}/confirm")

    async def create_account(self, reg_id: str, phone: str, email: str, password: str) -> Any:
        out = await self.call(
            "POST",
            f"{self.ep.registration}/v1/registrations/{reg_id}/account",
            json={"phone": phone, "email": email, "password": password},
        )
        self.token = out["access_token"]
        return out

    async def login(self, phone: str, password: str) -> Any:
        out = await self.call(
            "POST", f"{self.ep.registration}/v1/sessions", json={"phone": phone, "password": password}
        )
        self.token = out["access_token"]
        return out

    async def packages(self) -> Any:
        return await self.call("GET", f"{self.ep.registration}/v1/packages")

    async def place_order(
        self, package_code: str, *, key_algorithm: str | None = None, renews_certificate_id: str | None = None
    ) -> Any:
        body: dict[str, Any] = {"package_code": package_code}
        if key_algorithm:
            body["key_algorithm"] = key_algorithm
        if renews_certificate_id:
            body["renews_certificate_id"] = renews_certificate_id
        return await self.call("POST", f"{self.ep.registration}/v1/orders", auth=True, json=body)

    async def cancel_order(self, order_id: str) -> Any:
        return await self.call("POST", f"{self.ep.registration}/v1/orders/{order_id}/cancellation", auth=True)

    async def open_organisation_registration(
        self,
        organisation: dict[str, Any],
        authorised_person: dict[str, Any],
        package_codes: list[str],
    ) -> Any:
        """A sales agent opens an organisation registration (the authorised person is invited by SMS)."""
        body = {"organisation": organisation, "authorised_person": authorised_person, "package_codes": package_codes}
        return await self.call("POST", f"{self.ep.registration}/v1/organisation-registrations", auth=True, json=body)

    async def organisation_registrations(self) -> Any:
        return await self.call("GET", f"{self.ep.registration}/v1/organisation-registrations", auth=True)

    async def organisation_registration(self, registration_id: str) -> Any:
        url = f"{self.ep.registration}/v1/organisation-registrations/{registration_id}"
        return await self.call("GET", url, auth=True)

    async def confirm_organisation_registration(self, registration_id: str) -> Any:
        """The authorised person confirms; the registration's orders are placed in their name."""
        url = f"{self.ep.registration}/v1/organisation-registrations/{registration_id}/confirmation"
        return await self.call("POST", url, auth=True)

    async def withdraw_organisation_registration(self, registration_id: str) -> Any:
        url = f"{self.ep.registration}/v1/organisation-registrations/{registration_id}/withdrawal"
        return await self.call("POST", url, auth=True)

    async def order(self, order_id: str, *, status_not: str | None = None, wait: float = 25) -> Any:
        """The order; with ``status_not``, as soon as its status is no longer that (long-poll)."""
        params = {"status_not": status_not, "wait": wait} if status_not is not None else None
        return await self.call("GET", f"{self.ep.registration}/v1/orders/{order_id}", auth=True, params=params)

    async def order_reaching(self, order_id: str, status: str, timeout: float = 60) -> Any:
        """Follow the order's status changes as they happen until it reaches ``status``."""
        deadline = asyncio.get_running_loop().time() + timeout
        order = await self.order(order_id)
        while order["status"] != status:
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                raise TimeoutError(f"order {order_id} did not reach {status}; it is {order['status']}")
            order = await self.order(order_id, status_not=order["status"], wait=min(left, 25))
        return order

    # payment --------------------------------------------------------------
    async def payment_for_order(self, order_id: str, wait: float = 0) -> Any:
        """The order's payment; ``wait`` seconds of long-poll while payment has not yet opened it."""
        params: dict[str, Any] = {"order_id": order_id, "wait": wait}
        return await self.call("GET", f"{self.ep.payment}/v1/payments", auth=True, params=params)

    async def refund_payment(self, payment_id: str, note: str) -> Any:
        """An operator refunds a confirmed payment."""
        url = f"{self.ep.payment}/v1/payments/{payment_id}/refunds"
        return await self.call("POST", url, auth=True, json={"note": note})

    async def checkout(self, payment_id: str) -> Any:
        return await self.call("POST", f"{self.ep.payment}/v1/payments/{payment_id}/checkout", auth=True)

    async def sandbox_pay(
        self, payment_url: str, outcome: str = "success", behaviour: dict[str, Any] | None = None
    ) -> Any:
        """Development: the user at the (sandbox) gateway's payment page, which then notifies kyso —
        or misbehaves as ``behaviour`` says (delay_ms, copies, stale_failure_after, paid_amount_vnd, …)."""
        parts = urlsplit(payment_url)
        body: dict[str, Any] = {"payment_url": payment_url, "outcome": outcome}
        if behaviour:
            body["behaviour"] = behaviour
        return await self.call("POST", f"{parts.scheme}://{parts.netloc}/sandbox/pay", json=body)

    # signing --------------------------------------------------------------
    async def contract_for_order(self, order_id: str, wait: float = 0, *, sealed: bool = False) -> Any:
        """The order's contract; ``wait`` seconds of long-poll while it is not yet drawn up (or, with ``sealed``,
        not yet sealed by the provider: that follows the consent)."""
        params: dict[str, Any] = {"order_id": order_id, "wait": wait, "until": "sealed" if sealed else "drawn_up"}
        return await self.call("GET", f"{self.ep.signing}/v1/contracts", auth=True, params=params)

    async def certificate(self, certificate_id: str) -> Any:
        return await self.call("GET", f"{self.ep.signing}/v1/certificates/{certificate_id}", auth=True)

    async def acceptance_record(self, certificate_id: str) -> Any:
        return await self.call(
            "GET", f"{self.ep.signing}/v1/certificates/{certificate_id}/acceptance-record", auth=True
        )

    async def activate_certificate(self, certificate_id: str, pin: str) -> Any:
        """Set the signing PIN; the answer names the signing request for the acceptance record."""
        return await self.call(
            "POST", f"{self.ep.signing}/v1/certificates/{certificate_id}/activation", auth=True, json={"pin": pin}
        )

    async def ask_acceptance_signature(self, certificate_id: str) -> Any:
        return await self.call(
            "POST", f"{self.ep.signing}/v1/certificates/{certificate_id}/acceptance-record/signing-request", auth=True
        )

    async def download(self, path: str) -> bytes:
        """A file of the account's (``pdf_url`` of a contract or an acceptance record) as bytes."""
        if not self.token:
            raise RuntimeError("sign in first")
        r = await self.http.get(f"{self.ep.signing}{path}", headers={"Authorization": f"Bearer {self.token}"})
        if r.status_code >= 400:
            raise KysoError(r.status_code, r.json().get("error", {}).get("code", "unknown"), r.text, r.text)
        return r.content

    async def confirm_signing_by_sms(self, request_id: str, account_id: str, phone: str, pin: str) -> Any:
        """The app: an SMS code bound to the request's documents, then the signing PIN."""
        req = await self.signing_request(request_id)
        ch = await self.sms_challenge(
            "signature_confirmation", request_id, account_id=account_id, binding_sha256=req["documents_digest"]
        )
        await self.verify_sms(ch["challenge_id"], await self.dev_sms_code(phone, ch["challenge_id"]))
        return await self.confirm_signing(request_id, pin)

    async def ca_certificate(self) -> str:
        return str(await self.call("GET", f"{self.ep.signing}/v1/ca/certificate"))

    async def my_certificates(self) -> Any:
        return await self.call("GET", f"{self.ep.signing}/v1/certificates", auth=True)

    async def request_lifecycle_change(
        self, certificate_id: str, action: str, reason: str = "unspecified", invalidity_date: str | None = None
    ) -> Any:
        """Ask to revoke or suspend one's certificate (needs a fresh login); confirm with the SMS code it names."""
        return await self.call(
            "POST",
            f"{self.ep.signing}/v1/certificates/{certificate_id}/lifecycle-requests",
            auth=True,
            json=_lifecycle(action, reason, invalidity_date),
        )

    async def confirm_lifecycle_change(self, request: dict[str, Any], account_id: str, phone: str) -> str:
        """Ask for, read (dev inbox) and verify the SMS code bound to a revocation/suspension request."""
        otp = request["otp"]
        ch = await self.sms_challenge(
            otp["purpose"], otp["subject"], account_id=account_id, binding_sha256=otp["binding_sha256"]
        )
        await self.verify_sms(ch["challenge_id"], await self.dev_sms_code(phone, ch["challenge_id"]))
        return str(ch["challenge_id"])

    async def operator_lifecycle(
        self, certificate_id: str, action: str, reason: str = "unspecified", invalidity_date: str | None = None
    ) -> Any:
        return await self.call(
            "POST",
            f"{self.ep.signing}/v1/operator/certificates/{certificate_id}/lifecycle",
            auth=True,
            json=_lifecycle(action, reason, invalidity_date),
        )

    # remote signing, in the kyso app -----------------------------------------
    async def signing_requests(self) -> Any:
        return await self.call("GET", f"{self.ep.signing}/v1/me/signing-requests", auth=True)

    async def signing_request(self, request_id: str) -> Any:
        return await self.call("GET", f"{self.ep.signing}/v1/me/signing-requests/{request_id}", auth=True)

    async def confirm_signing(self, request_id: str, pin: str) -> Any:
        return await self.call(
            "POST",
            f"{self.ep.signing}/v1/me/signing-requests/{request_id}/confirmation",
            auth=True,
            json={"pin": pin},
        )

    async def reject_signing(self, request_id: str) -> Any:
        return await self.call("POST", f"{self.ep.signing}/v1/me/signing-requests/{request_id}/rejection", auth=True)

    async def smartotp_confirm_documents(
        self, token_id: str, code: str, document_hashes_hex: list[str], reference: str
    ) -> Any:
        """Verify a SmartOTP code computed over these documents (OCRA), naming the request it confirms."""
        return await self.call(
            "POST",
            f"{self.ep.otp}/v1/smartotp/tokens/{token_id}/verify-transaction",
            auth=True,
            json={
                "code": code,
                "transaction": {"type": "documents", "document_hashes": document_hashes_hex},
                "reference": reference,
                "device_time": time.time(),
            },
        )

    async def pki(self, path: str) -> bytes:
        """A public PKI artefact (``/pki/crl/issuing.crl``, ``/pki/ca/root.cer``, …) as bytes."""
        r = await self.http.get(f"{self.ep.signing}{path}")
        r.raise_for_status()
        return r.content

    async def ocsp(self, request_der: bytes) -> bytes:
        r = await self.http.post(
            f"{self.ep.signing}/ocsp", content=request_der, headers={"Content-Type": "application/ocsp-request"}
        )
        r.raise_for_status()
        return r.content

    # otp ------------------------------------------------------------------
    async def sms_challenge(
        self,
        purpose: str,
        subject: str,
        *,
        phone: str | None = None,
        account_id: str | None = None,
        binding_sha256: str | None = None,
    ) -> Any:
        body = {
            k: v
            for k, v in {
                "purpose": purpose,
                "subject": subject,
                "phone": phone,
                "account_id": account_id,
                "binding_sha256": binding_sha256,
            }.items()
            if v is not None
        }
        return await self.call("POST", f"{self.ep.otp}/v1/sms-otp/challenges", json=body, auth=account_id is not None)

    async def verify_sms(self, challenge_id: str, code: str) -> Any:
        return await self.call(
            "POST", f"{self.ep.otp}/v1/sms-otp/challenges/{challenge_id}/verify", json={"code": code}
        )

    async def dev_sms_code(self, phone: str, challenge_id: str) -> str:
        """Read the code from the development SMS inbox (what the user reads on their phone)."""
        inbox = await self.call("GET", f"{self.ep.otp}/v1/dev/sms-inbox", params={"phone": phone})
        for m in inbox["messages"]:
            if m["id"] == challenge_id:
                found = re.search(r"\b(\d{6})\b", m["text"])
                if found:
                    return found.group(1)
        raise LookupError("no SMS for that challenge")

    async def dev_sms_text(self, phone: str, reference: str) -> str | None:
        """A message's text from the development SMS inbox (an invitation, say), by its reference; None
        while it has not arrived."""
        inbox = await self.call("GET", f"{self.ep.otp}/v1/dev/sms-inbox", params={"phone": phone})
        return next((str(m["text"]) for m in inbox["messages"] if m["id"] == reference), None)

    async def smartotp_enrol(self, account_id: str, sms_challenge_id: str, terms_version: str = "2025-01") -> Any:
        return await self.call(
            "POST",
            f"{self.ep.otp}/v1/smartotp/enrolments",
            auth=True,
            json={
                "account_id": account_id,
                "terms_version": terms_version,
                "terms_accepted": True,
                "sms_challenge_id": sms_challenge_id,
            },
        )

    async def smartotp_activate(self, token_id: str, activation_code: str, device_id: str) -> Any:
        """``token_id``: the enrolment the code belongs to (wrong codes count against it)."""
        return await self.call(
            "POST",
            f"{self.ep.otp}/v1/smartotp/activations",
            json={"token_id": token_id, "activation_code": activation_code, "device_id": device_id},
        )

    async def smartotp_verify(self, token_id: str, code: str) -> Any:
        return await self.call(
            "POST",
            f"{self.ep.otp}/v1/smartotp/tokens/{token_id}/verify",
            auth=True,
            json={"code": code, "device_time": time.time()},
        )

    async def resend_sms(self, challenge_id: str) -> Any:
        return await self.call("POST", f"{self.ep.otp}/v1/sms-otp/challenges/{challenge_id}/resend")

    async def smartotp_terms(self) -> Any:
        return await self.call("GET", f"{self.ep.otp}/v1/smartotp/terms")

    async def smartotp_status(self, token_id: str) -> Any:
        return await self.call("GET", f"{self.ep.otp}/v1/smartotp/tokens/{token_id}", auth=True)

    async def smartotp_verify_transaction(
        self, token_id: str, code: str, transaction: dict[str, Any], device_time: float | None = None
    ) -> Any:
        return await self.call(
            "POST",
            f"{self.ep.otp}/v1/smartotp/tokens/{token_id}/verify-transaction",
            auth=True,
            json={
                "code": code,
                "transaction": transaction,
                "device_time": time.time() if device_time is None else device_time,
            },
        )

    async def smartotp_resync(self, token_id: str, code1: str, code2: str) -> Any:
        return await self.call(
            "POST",
            f"{self.ep.otp}/v1/smartotp/tokens/{token_id}/resync",
            auth=True,
            json={"code1": code1, "code2": code2},
        )

    async def smartotp_pin_reset(self, sms_challenge_id: str) -> Any:
        return await self.call(
            "POST", f"{self.ep.otp}/v1/smartotp/pin-reset", auth=True, json={"sms_challenge_id": sms_challenge_id}
        )

    async def otp_methods(self, account_id: str) -> Any:
        return await self.call("GET", f"{self.ep.otp}/v1/accounts/{account_id}/otp-methods", auth=True)

    async def set_preferred_method(self, account_id: str, method: str) -> Any:
        return await self.call(
            "PUT", f"{self.ep.otp}/v1/accounts/{account_id}/otp-methods/preferred", auth=True, json={"method": method}
        )

    async def unlock_method(self, account_id: str, method: str, **proof: str) -> Any:
        return await self.call(
            "POST", f"{self.ep.otp}/v1/accounts/{account_id}/otp-methods/{method}/unlock", auth=True, json=proof
        )

    async def operator_lock(self, account_id: str, method: str, reason: str) -> Any:
        """Operator console: lock one OTP method of an account (this client signed in as an operator)."""
        return await self.call(
            "POST",
            f"{self.ep.otp}/v1/operator/accounts/{account_id}/otp-methods/{method}/lock",
            auth=True,
            json={"reason": reason},
        )

    async def verified_sms(self, purpose: str, subject: str, account_id: str, phone: str) -> str:
        """Request, read (dev inbox) and verify an SMS code for an account; returns the challenge id."""
        ch = await self.sms_challenge(purpose, subject, account_id=account_id)
        await self.verify_sms(ch["challenge_id"], await self.dev_sms_code(phone, ch["challenge_id"]))
        return str(ch["challenge_id"])

    async def server_time(self) -> Any:
        return await self.call("GET", f"{self.ep.otp}/v1/time")


def _lifecycle(action: str, reason: str, invalidity_date: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {"action": action, "reason": reason}
    if invalidity_date:
        body["invalidity_date"] = invalidity_date
    return body


async def eventually(
    fn: Callable[[], Awaitable[T]],
    check: Callable[[T], bool] = lambda _: True,
    timeout: float = 30.0,
    interval: float = 0.2,
) -> T:
    """Poll ``fn`` until ``check`` holds; a :class:`KysoError` 404/409 counts as 'not yet'."""
    deadline = asyncio.get_running_loop().time() + timeout
    last: Any = None
    while True:
        try:
            value = await fn()
            if check(value):
                return value
            last = value
        except KysoError as exc:
            if exc.status not in (404, 409):
                raise
            last = exc
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"condition not reached in {timeout}s; last: {last!r}")
        await asyncio.sleep(interval)
