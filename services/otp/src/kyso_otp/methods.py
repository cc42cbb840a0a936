"""The account's OTP methods (SMS and SmartOTP): the preferred one, operator locks, and unlock by
re-proving identity with the other method."""

from __future__ import annotations

from typing import Any, Literal

from kyso_contracts import OtpMethodChanged, OtpMethodLocked, OtpMethodUnlocked, OtpPurpose
from kyso_kit.clock import Clock
from kyso_kit.errors import Conflict, Invalid
from kyso_kit.store import Doc, Store

from .errors import method_locked
from .smartotp import SmartOtp
from .sms import SmsOtp

Method = Literal["sms", "smartotp"]


class OtpMethods:
    def __init__(self, store: Store, sms: SmsOtp, smartotp: SmartOtp, clock: Clock) -> None:
        self.methods = store.collection("otp_methods", events=True)
        self.sms = sms
        self.smartotp = smartotp
        self.clock = clock

    async def _doc(self, account_id: str) -> Doc:
        return await self.methods.get(account_id) or {"_id": account_id}

    async def _write(self, account_id: str, update: Doc, event: Any) -> None:
        await self.methods.update({"_id": account_id}, update, events=[event], upsert_with={"_id": account_id})

    async def view(self, account_id: str) -> dict[str, Any]:
        doc = await self._doc(account_id)
        locks = doc.get("locks") or {}
        token = await self.smartotp.active_token(account_id)
        phone_known = await self.sms.accounts.get(account_id, {"_id": 1}) is not None
        token_locked = bool(token and token.get("failures", 0) >= self.smartotp.policy.max_failures)
        return {
            "account_id": account_id,
            "preferred": doc.get("preferred", "sms"),
            "methods": {
                "sms": {
                    "available": phone_known,
                    "locked": bool(locks.get("sms")),
                    "lock_reason": (locks.get("sms") or {}).get("reason"),
                },
                "smartotp": {
                    "available": token is not None,
                    "token_id": token["_id"] if token else None,
                    "locked": bool(locks.get("smartotp")) or token_locked,
                    "lock_reason": (locks.get("smartotp") or {}).get("reason")
                    or ("too_many_wrong_codes" if token_locked else None),
                },
            },
        }

    async def set_preferred(self, account_id: str, method: Method) -> dict[str, Any]:
        view = await self.view(account_id)
        info = view["methods"][method]
        if not info["available"]:
            raise Conflict(
                "method_unavailable",
                "Enrol SmartOTP before choosing it",
                "Vui lòng đăng ký SmartOTP trước khi chọn phương thức này",
            )
        if info["locked"]:
            raise method_locked(method)
        previous = view["preferred"]
        if previous == method:
            return view
        changed = OtpMethodChanged(account_id=account_id, method=method, previous=previous, changed_at=self.clock.now())
        await self._write(account_id, {"$set": {"preferred": method}}, changed)
        return await self.view(account_id)

    async def operator_lock(self, account_id: str, method: Method, reason: str) -> dict[str, Any]:
        other = "smartotp" if method == "sms" else "sms"
        doc = await self._doc(account_id)
        if (doc.get("locks") or {}).get(other):
            raise Conflict(
                "other_method_locked",
                "Both methods cannot be locked at once",
                "Không thể khóa đồng thời cả hai phương thức",
            )
        t = self.clock.now()
        locked = OtpMethodLocked(account_id=account_id, method=method, reason=reason, locked_at=t)
        if method == "smartotp":
            await self.smartotp.set_operator_lock(account_id, True)  # first: never a window without the lock
        update: Doc = {"$set": {f"locks.{method}": {"reason": reason, "at": t}}}
        if doc.get("preferred", "sms") == method:
            update["$set"]["preferred"] = other
        await self._write(account_id, update, locked)
        return await self.view(account_id)

    async def unlock(
        self, account_id: str, method: Method, *, sms_challenge_id: str | None, token_id: str | None, code: str | None
    ) -> dict[str, Any]:
        """Unlock one method by proving identity with the other (plus a fresh credential, checked by the caller)."""
        if method == "smartotp":
            if not sms_challenge_id:
                raise Invalid(
                    "sms_challenge_required",
                    "Unlocking SmartOTP needs a verified SMS code",
                    "Mở khóa SmartOTP cần mã OTP SMS đã xác thực",
                )
            await self.sms.consume(sms_challenge_id, OtpPurpose.UNLOCK, account_id)
            await self.smartotp.clear_failures(account_id)
            await self.smartotp.set_operator_lock(account_id, False)
        else:
            if not (token_id and code):
                raise Invalid(
                    "smartotp_code_required", "Unlocking SMS needs a SmartOTP code", "Mở khóa SMS cần mã SmartOTP"
                )
            await self.smartotp.verify(account_id, token_id, code)
        unlocked = OtpMethodUnlocked(account_id=account_id, method=method, unlocked_at=self.clock.now())
        await self._write(account_id, {"$unset": {f"locks.{method}": ""}}, unlocked)
        return await self.view(account_id)
