"""The sandbox payment gateway: VNPay's counterpart in development and tests, run as its own process
(``python -m kyso_payment.sandbox_gateway``), talking to the payment service only over HTTP — as VNPay
would. It keeps its own ledger of transactions (in memory: it plays an outside system, not ours).

- ``POST /sandbox/pay`` plays the user at the payment page: verifies the checkout URL's signature,
  records the transaction, and notifies the merchant's IPN URL — or misbehaves on request
  (``behaviour``): notify late, several times at once, out of order (a stale failure after the
  success), for another amount, with a bad signature, or never.
- ``POST /merchant_webapi/api/transaction`` answers ``querydr`` and ``refund`` as VNPay does: checksum
  over the "|"-joined fields both ways, response codes 00/02/03/91/93/94/95/97/99.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from urllib.parse import parse_qsl, urlsplit

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from kyso_kit.timeutil import VN

from . import vnpay
from .settings import PaymentSettings

log = logging.getLogger(__name__)


class Behaviour(BaseModel):
    model_config = ConfigDict(extra="forbid")
    delay_ms: int = Field(default=0, ge=0, le=120_000, description="Notify this long after the payment")
    copies: int = Field(default=1, ge=0, le=2000, description="How many identical IPNs; 0 = never notify")
    stale_failure_after: bool = Field(default=False, description="Then send a stale 'cancelled' IPN (reordering)")
    paid_amount_vnd: int | None = Field(default=None, ge=1, description="The user pays another amount")
    bad_signature: bool = Field(default=False, description="Corrupt the IPN's vnp_SecureHash")


class PayIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    payment_url: Annotated[str, StringConstraints(min_length=1, max_length=4096)]
    outcome: Literal["success", "cancel"] = "success"
    behaviour: Behaviour = Behaviour()


def _now_vn(at: datetime | None = None) -> str:
    return (at or datetime.now(UTC)).astimezone(VN).strftime("%Y%m%d%H%M%S")


class Gateway:
    def __init__(self, tmn_code: str, secret: str, ipn_url: str) -> None:
        self.tmn_code, self.secret, self.ipn_url = tmn_code, secret, ipn_url
        self.ledger: dict[str, dict[str, Any]] = {}
        self.request_ids: set[str] = set()
        self.http = httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=200))
        self.tasks: set[asyncio.Task[Any]] = set()

    # ------------------------------------------------------------------ the payment page

    def paid(self, payment_url: str, outcome: str = "success", paid_amount_vnd: int | None = None) -> dict[str, Any]:
        """The user at the payment page: the transaction as the gateway records it; ValueError if the
        checkout URL is not signed by this merchant."""
        query = dict(parse_qsl(urlsplit(payment_url).query))
        if not vnpay.verify(query, self.secret) or query.get("vnp_TmnCode") != self.tmn_code:
            raise ValueError("the checkout URL signature is invalid")
        ok = outcome == "success"
        txn: dict[str, Any] = {
            "vnp_TxnRef": query["vnp_TxnRef"],
            "vnp_Amount": str(paid_amount_vnd * 100 if paid_amount_vnd else int(query["vnp_Amount"])),
            "vnp_OrderInfo": query.get("vnp_OrderInfo", ""),
            "vnp_TransactionNo": str(secrets.randbelow(9 * 10**7) + 10**7),
            "vnp_ResponseCode": "00" if ok else "24",
            "vnp_TransactionStatus": "00" if ok else "02",
            "vnp_PayDate": _now_vn(),
            "vnp_BankCode": "NCB",
            "create_date": query.get("vnp_CreateDate", ""),
            "refunded": 0,
        }
        self.ledger[str(txn["vnp_TxnRef"])] = txn
        return txn

    def ipn_of(self, txn: dict[str, Any], *, bad_signature: bool = False) -> dict[str, str]:
        """The signed notification of a recorded transaction (what VNPay sends to the IPN URL)."""
        return self._ipn(txn, bad_signature)

    async def pay(self, body: PayIn) -> dict[str, Any]:
        try:
            txn = self.paid(body.payment_url, body.outcome, body.behaviour.paid_amount_vnd)
        except ValueError:
            return {"error": {"code": "invalid_checkout_signature", "message": "The checkout URL signature is invalid",
                              "message_vi": "Chữ ký URL thanh toán không hợp lệ"}}  # fmt: skip
        b = body.behaviour
        ipns = [self._ipn(txn, b.bad_signature) for _ in range(b.copies)]
        stale = None
        if b.stale_failure_after and ipns:
            stale = self._ipn(txn | {"vnp_ResponseCode": "24", "vnp_TransactionStatus": "02"}, b.bad_signature)
        out: dict[str, Any] = {"txn_ref": txn["vnp_TxnRef"], "transaction_no": txn["vnp_TransactionNo"]}
        if b.delay_ms:
            task = asyncio.create_task(self._deliver(ipns, stale, b.delay_ms / 1000))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
            out["scheduled"] = len(ipns) + (stale is not None)
        else:
            out["ipn_answers"] = await self._deliver(ipns, stale, 0)
            out["ipn_response"] = out["ipn_answers"][0] if out["ipn_answers"] else None
        return out

    def _ipn(self, txn: dict[str, Any], bad_signature: bool) -> dict[str, str]:
        ipn = {"vnp_TmnCode": self.tmn_code} | {
            k: v for k, v in txn.items() if k.startswith("vnp_") and k != "vnp_Command"
        }
        ipn["vnp_SecureHash"] = vnpay.sign(ipn, self.secret if not bad_signature else self.secret + "x")
        return ipn

    async def _deliver(
        self, ipns: list[dict[str, str]], stale: dict[str, str] | None, delay: float
    ) -> list[dict[str, Any]]:
        """The copies at once, then (reordering) a stale notification after all of them."""
        if delay:
            await asyncio.sleep(delay)
        answers = list(await asyncio.gather(*(self._send(i) for i in ipns)))
        if stale is not None:
            answers.append(await self._send(stale))
        return answers

    async def _send(self, ipn: dict[str, str]) -> dict[str, Any]:
        try:
            r = await self.http.get(self.ipn_url, params=ipn)
            return dict(r.json())
        except (httpx.HTTPError, ValueError) as exc:
            log.warning("IPN not delivered", extra={"error": type(exc).__name__})
            return {"RspCode": "--", "Message": type(exc).__name__}

    # ------------------------------------------------------------------ the merchant API

    def transaction_api(self, body: dict[str, Any]) -> dict[str, Any]:
        command = str(body.get("vnp_Command"))
        base = {"vnp_ResponseId": secrets.token_hex(8), "vnp_Command": command, "vnp_TmnCode": self.tmn_code}
        if command not in ("querydr", "refund"):
            return self._answer(base | {"vnp_Command": "querydr"}, "03", "Invalid command")
        if body.get("vnp_TmnCode") != self.tmn_code:
            return self._answer(base, "02", "Invalid merchant")
        if not vnpay.verify_api(body, self.secret):
            return self._answer(base, "97", "Invalid Checksum")
        request_id = str(body.get("vnp_RequestId") or "")
        if not request_id or request_id in self.request_ids:
            return self._answer(base, "94" if request_id else "03", "Duplicate request")
        self.request_ids.add(request_id)
        txn = self.ledger.get(str(body.get("vnp_TxnRef")))
        if txn is None:
            return self._answer(base | {"vnp_TxnRef": body.get("vnp_TxnRef")}, "91", "Transaction not found")
        info = base | {k: txn[k] for k in ("vnp_TxnRef", "vnp_Amount", "vnp_BankCode", "vnp_PayDate",
                                            "vnp_TransactionNo", "vnp_TransactionStatus", "vnp_OrderInfo")}  # fmt: skip
        if command == "querydr":
            status = txn["vnp_TransactionStatus"] if not txn["refunded"] else "06"
            return self._answer(info | {"vnp_TransactionType": "01", "vnp_TransactionStatus": status}, "00", "OK")
        if txn["vnp_TransactionStatus"] != "00":
            return self._answer(info, "95", "Transaction was not successful")
        amount = int(str(body.get("vnp_Amount") or "0"))
        if amount <= 0 or amount > int(txn["vnp_Amount"]) - txn["refunded"]:
            return self._answer(info, "93", "Invalid refund amount")
        txn["refunded"] += amount
        kind = "02" if txn["refunded"] == int(txn["vnp_Amount"]) else "03"
        return self._answer(
            info | {"vnp_Amount": str(amount), "vnp_TransactionType": kind, "vnp_TransactionStatus": "06"}, "00", "OK"
        )

    def _answer(self, body: dict[str, Any], code: str, message: str) -> dict[str, Any]:
        out = {k: v for k, v in body.items() if v is not None} | {"vnp_ResponseCode": code, "vnp_Message": message}
        out["vnp_SecureHash"] = vnpay.sign_api(out, self.secret, response=True)
        return out


def build(settings: PaymentSettings | None = None, ipn_url: str | None = None) -> tuple[FastAPI, Gateway]:
    settings = settings or PaymentSettings()
    assert settings.vnpay_hash_secret
    gateway = Gateway(settings.vnpay_tmn_code, settings.vnpay_hash_secret, ipn_url or settings.vnpay_ipn_url)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await gateway.http.aclose()

    app = FastAPI(title="kyso sandbox gateway (VNPay)", version="0.1.0", lifespan=lifespan)

    @app.post("/sandbox/pay")
    async def pay(body: PayIn) -> JSONResponse:
        """The user at the payment page; the IPN answers when sent at once."""
        out = await gateway.pay(body)
        return JSONResponse(out, status_code=400 if "error" in out else 200)

    @app.post("/merchant_webapi/api/transaction")
    async def transaction(request: Request) -> dict[str, Any]:
        try:
            body = await request.json()
        except ValueError:
            body = {}
        return gateway.transaction_api(body if isinstance(body, dict) else {})

    @app.get("/health")
    @app.get("/ready")
    async def ready() -> dict[str, str]:
        return {"status": "ready"}

    return app, gateway


def main() -> None:
    import uvicorn

    settings = PaymentSettings()
    app, _ = build(settings)
    uvicorn.run(app, host=settings.http_host, port=settings.http_port, log_level="warning")


if __name__ == "__main__":
    main()
