"""Step 3 and signing in: accounts (phone verified by SMS OTP, email, argon2id password), login with
lock-out, access tokens carrying the account's roles, and operator accounts made by an admin.

Password guessing is bounded per account *and* client address, so a guesser locks out only itself:
five wrong passwords for an account from one address (in any 15 minutes) and that address may not
try that account until the oldest of them is 15 minutes old, while the owner signs in from anywhere
else. Two backstops, both on sliding windows: an account guessed from many addresses (50 wrong in a
day) may then be tried only from addresses it signed in from before; an address spraying many
accounts (100 wrong in an hour) may then try only accounts it has not got wrong lately. Neither
ever refuses the right password of an account from an address that is not guessing at it."""

from __future__ import annotations

import uuid

from kyso_contracts import AccountCreated
from kyso_kit.client_address import limit_key
from kyso_kit.clock import Clock
from kyso_kit.crypto import hash_secret, off_loop, verify_secret
from kyso_kit.errors import Conflict, Invalid, Unauthenticated, not_found
from kyso_kit.limits import SlidingWindow
from kyso_kit.policy import Principal, ensure_may
from kyso_kit.store import Doc, DuplicateKey, Store
from kyso_kit.tokens import TokenIssuer

from . import domain
from .identity import Identities
from .schemas import AccountView, SessionView

# A fixed argon2id hash so an unknown phone costs the same time as a wrong password.
_DUMMY_HASH = hash_secret("kyso-timing-equaliser")
KNOWN_ADDRESSES = 5
DAY, HOUR = 24 * 3600, 3600


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
        failures_per_account_per_day: int = 50,
        failures_per_address_per_hour: int = 100,
    ) -> None:
        self.accounts = store.collection("accounts", events=True)
        self.limits = SlidingWindow(store.collection("limit_events"), clock)
        self.identities = identities
        self.tokens = tokens
        self.clock = clock
        self.max_failures = max_failures
        self.lock_seconds = lock_seconds
        self.per_account = failures_per_account_per_day
        self.per_address = failures_per_address_per_hour

    async def init(self) -> None:
        await self.accounts.ensure_index([("registration_id", 1)], unique=True, sparse=True)
        await self.accounts.ensure_index([("phone", 1)], unique=True)
        await self.limits.init_indexes()

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

    async def login(self, phone: str, password: str, client: str = "unknown") -> SessionView:
        """Wrong, unknown and refused-by-a-bound answer alike (401 ``invalid_credentials``); a refused
        try is not hashed, so it costs nothing and tells nothing."""
        address = limit_key(client)
        acct = await self.accounts.find_one({"phone": phone})
        spraying = await self.limits.over("login-address", address, self.per_address, HOUR) is not None
        if acct is None:
            if spraying:
                raise invalid_credentials()
            await off_loop(verify_secret, _DUMMY_HASH, password)
            await self.limits.record("login-address", address)
            raise invalid_credentials()
        pair = f"{acct['_id']}|{address}"
        if spraying and await self.limits.count("login-pair", pair, self.lock_seconds) > 0:
            raise invalid_credentials()
        if address not in (acct.get("known_addresses") or []) and (
            await self.limits.over("login-account", acct["_id"], self.per_account, DAY) is not None
        ):
            raise invalid_credentials()  # guessed from everywhere: only its own usual addresses may try
        # The try is counted before the password is checked, so parallel guesses are bounded too; a
        # right password clears the count.
        if await self.limits.hit("login-pair", pair, self.max_failures, self.lock_seconds) is not None:
            raise invalid_credentials()  # this address guessed this account: it waits, nobody else does
        if not await off_loop(verify_secret, acct["password_hash"], password):
            await self.limits.record("login-account", acct["_id"])
            await self.limits.record("login-address", address)
            raise invalid_credentials()
        await self.limits.clear("login-pair", pair)
        known = [address, *(a for a in acct.get("known_addresses") or [] if a != address)][:KNOWN_ADDRESSES]
        await self.accounts.update(
            {"_id": acct["_id"]}, {"$set": {"known_addresses": known, "last_login_at": self.clock.now()}}
        )
        return self._session(acct)
