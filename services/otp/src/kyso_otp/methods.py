"""The account's OTP methods (SMS and SmartOTP): the preferred one, operator locks, and unlock by
re-proving identity with the other method."""

from __future__ import annotations

from typing import Any, Literal

from kyso_contracts import OtpMethodChanged, OtpMethodLocked, OtpMethodUnlocked, OtpPurpose
from kyso_kit.errors import ApiError
from kyso_kit.outbox import with_events
from kyso_kit.runtime import ServiceRuntime
from kyso_kit.timeutil import now

from .errors import method_locked
from .smartotp import SmartOtp
from .sms import SmsOtp

Method = Literal["sms", "smartotp"]


class OtpMethods:
    def __init__(self, runtime: ServiceRuntime, sms: SmsOtp, smartotp: SmartOtp) -> None:
        self.rt = runtime
        self.methods = runtime.db["otp_methods"]
        self.sms = sms
        self.smartotp = smartotp

    async def _doc(self, account_id: str) -> dict[str, Any]:
        return dict(await self.methods.find_one({"_id": account_id}) or {"_id": account_id})

    async def view(self, account_id: str) -> dict[str, Any]:
        doc = await self._doc(account_id)
        locks = doc.get("locks") or {}
        token = await self.smartotp.active_token(account_id)
        phone_known = await self.sms.accounts.find_one({"_id": account_id}, {"_id": 1}) is not None
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
            raise ApiError(
                409,
                "method_unavailable",
                "Enrol SmartOTP before choosing it",
                "Vui lòng đăng ký SmartOTP trước khi chọn phương thức này",
            )
        if info["locked"]:
            raise method_locked(method)
        previous = view["preferred"]
        if previous == method:
            return view
        event = self.rt.event(
            OtpMethodChanged(account_id=account_id, method=method, previous=previous, changed_at=now())
        )
        await self.methods.update_one(
            {"_id": account_id}, with_events({"$set": {"preferred": method}}, [event]), upsert=True
        )
        self.rt.relay.nudge("otp_methods", account_id)
        return await self.view(account_id)

    async def operator_lock(self, account_id: str, method: Method, reason: str) -> dict[str, Any]:
        other = "smartotp" if method == "sms" else "sms"
        doc = await self._doc(account_id)
        if (doc.get("locks") or {}).get(other):
            raise ApiError(
                409,
                "other_method_locked",
                "Both methods cannot be locked at once",
                "Không thể khóa đồng thời cả hai phương thức",
            )
        event = self.rt.event(OtpMethodLocked(account_id=account_id, method=method, reason=reason, locked_at=now()))
        if method == "smartotp":
            await self.smartotp.set_operator_lock(account_id, True)  # first: never a window without the lock
        update: dict[str, Any] = {"$set": {f"locks.{method}": {"reason": reason, "at": now()}}}
        if doc.get("preferred", "sms") == method:
            update["$set"]["preferred"] = other
        await self.methods.update_one({"_id": account_id}, with_events(update, [event]), upsert=True)
        self.rt.relay.nudge("otp_methods", account_id)
        return await self.view(account_id)

    async def unlock(
        self, account_id: str, method: Method, *, sms_challenge_id: str | None, token_id: str | None, code: str | None
    ) -> dict[str, Any]:
        """Unlock one method by proving identity with the other (plus a fresh credential, checked by the caller)."""
        if method == "smartotp":
            if not sms_challenge_id:
                raise ApiError(
                    422,
                    "sms_challenge_required",
                    "Unlocking SmartOTP needs a verified SMS code",
                    "Mở khóa SmartOTP cần mã OTP SMS đã xác thực",
                )
            await self.sms.consume(sms_challenge_id, OtpPurpose.UNLOCK, account_id)
            await self.smartotp.clear_failures(account_id)
            await self.smartotp.set_operator_lock(account_id, False)
        else:
            if not (token_id and code):
                raise ApiError(
                    422, "smartotp_code_required", "Unlocking SMS needs a SmartOTP code", "Mở khóa SMS cần mã SmartOTP"
                )
            await self.smartotp.verify(account_id, token_id, code)
        event = self.rt.event(OtpMethodUnlocked(account_id=account_id, method=method, unlocked_at=now()))
        await self.methods.update_one(
            {"_id": account_id}, with_events({"$unset": {f"locks.{method}": ""}}, [event]), upsert=True
        )
        self.rt.relay.nudge("otp_methods", account_id)
        return await self.view(account_id)
