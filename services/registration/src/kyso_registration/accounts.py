"""Step 3 and signing in: accounts (phone verified by SMS OTP, email, argon2id password), login with
lock-out, access tokens carrying the account's roles, and operator accounts made by an admin."""

from __future__ import annotations

import uuid
from datetime import timedelta

from kyso_contracts import AccountCreated
from kyso_kit.auth import Principal, TokenIssuer, ensure_may
from kyso_kit.clock import Clock
from kyso_kit.crypto import hash_secret, off_loop, verify_secret
from kyso_kit.errors import Conflict, Invalid, Unauthenticated, not_found
from kyso_kit.store import Doc, DuplicateKey, Store
from kyso_kit.timeutil import as_utc

from . import domain
from .identity import Identities
from .schemas import AccountView, SessionView

# A fixed argon2id hash so an unknown phone costs the same time as a wrong password.
_DUMMY_HASH = hash_secret("kyso-timing-equaliser")


def invalid_credentials() -> Unauthenticated:
    return Unauthenticated(
        "invalid_credentials", "Phone number or password is incorrect", "Số điện thoại hoặc mật khẩu không đúng"
    )


def weak_password(problems: list[str]) -> Invalid:
    return Invalid(
        "weak_password",
        "Password rejected: " + "; ".join(problems),
        "Mật khẩu chưa đủ mạnh",
        details={"problems": problems},
    )


class Accounts:
    def __init__(
        self,
        store: Store,
        identities: Identities,
        tokens: TokenIssuer,
        clock: Clock,
        *,
        max_failures: int,
        lock_seconds: int,
    ) -> None:
        self.accounts = store.collection("accounts", events=True)
        self.identities = identities
        self.tokens = tokens
        self.clock = clock
        self.max_failures = max_failures
        self.lock_seconds = lock_seconds

    async def init(self) -> None:
        await self.accounts.ensure_index([("registration_id", 1)], unique=True, sparse=True)
        await self.accounts.ensure_index([("phone", 1)], unique=True)

    def _session(self, doc: Doc) -> SessionView:
        roles = doc.get("roles") or ["subscriber"]
        token = self.tokens.issue(
            doc["_id"],
            roles=roles,
            organisation_id=doc.get("organisation_id"),
            auth_time=int(self.clock.time()),
            amr=["pwd"],
        )
        return SessionView(account_id=doc["_id"], access_token=token, expires_in=self.tokens.ttl, roles=roles)

    async def create(self, reg_id: str, phone: str, email: str, password: str) -> SessionView:
        reg = await self.identities.get(reg_id)
        if reg["status"] == "pending_confirmation":
            raise Conflict(
                "registration_not_confirmed",
                "Confirm the registration data first",
                "Vui lòng xác nhận thông tin đăng ký trước",
            )
        if reg["status"] == "account_created":
            raise Conflict("account_exists", "This registration already has an account", "Đăng ký này đã có tài khoản")
        if phone not in {v["phone"] for v in reg.get("verified_phones", [])}:
            raise Conflict(
                "phone_not_verified",
                "Verify this phone number with the SMS code first",
                "Vui lòng xác thực số điện thoại bằng mã OTP trước",
            )
        problems = domain.password_problems(password, phone, email)
        if problems:
            raise weak_password(problems)
        account_id, t = uuid.uuid4().hex, self.clock.now()
        citizen_id = reg["identity"]["citizen_id"]
        doc = {
            "_id": account_id,
            "registration_id": reg_id,
            "citizen_id": citizen_id,
            "phone": phone,
            "email": email,
            "password_hash": await off_loop(hash_secret, password),
            "roles": ["subscriber"],
            "created_at": t,
            "failed_logins": 0,
        }
        created = AccountCreated(
            account_id=account_id, registration_id=reg_id, citizen_id=citizen_id, phone=phone, email=email, created_at=t
        )
        try:
            await self.accounts.insert(doc, events=[created])
        except DuplicateKey:
            raise Conflict(
                "account_exists",
                "An account already exists for this registration or phone",
                "Đã có tài khoản cho đăng ký hoặc số điện thoại này",
            ) from None
        await self.identities.mark_account_created(reg_id, account_id)
        return self._session(doc)

    async def create_operator(self, phone: str, password: str, roles: list[str]) -> str:
        """An operator or auditor account (the admin command); these never self-register."""
        problems = domain.password_problems(password, phone, "")
        if problems:
            raise weak_password(problems)
        account_id = uuid.uuid4().hex
        await self.accounts.insert(
            {
                "_id": account_id,
                "phone": phone,
                "password_hash": await off_loop(hash_secret, password),
                "roles": sorted(set(roles)),
                "created_at": self.clock.now(),
                "failed_logins": 0,
            }
        )
        return account_id

    async def view(self, who: Principal, account_id: str) -> AccountView:
        ensure_may(who, account_id, "read")
        acct = await self.accounts.get(account_id, {"password_hash": 0})
        if acct is None:
            raise not_found("account", "tài khoản")
        return AccountView(
            account_id=acct["_id"],
            phone=acct["phone"],
            email=acct.get("email"),
            registration_id=acct.get("registration_id"),
            roles=acct.get("roles") or ["subscriber"],
        )

    async def login(self, phone: str, password: str) -> SessionView:
        acct = await self.accounts.find_one({"phone": phone})
        t = self.clock.now()
        if acct is None:
            await off_loop(verify_secret, _DUMMY_HASH, password)
            raise invalid_credentials()
        locked_until = acct.get("locked_until")
        if locked_until is not None and as_utc(locked_until) > t:
            raise invalid_credentials()  # locked and wrong answer alike; no hashing while locked
        if not await off_loop(verify_secret, acct["password_hash"], password):
            after = await self.accounts.update_and_get({"_id": acct["_id"]}, {"$inc": {"failed_logins": 1}})
            if after and after["failed_logins"] >= self.max_failures:
                await self.accounts.update(
                    {"_id": acct["_id"]},
                    {"$set": {"locked_until": t + timedelta(seconds=self.lock_seconds), "failed_logins": 0}},
                )
            raise invalid_credentials()
        await self.accounts.update({"_id": acct["_id"]}, {"$set": {"failed_logins": 0, "last_login_at": t}})
        return self._session(acct)
