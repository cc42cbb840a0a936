"""Who may do what: the :class:`Principal` a token carries, and :func:`ensure_may`, the one answer to
"may this principal act on this resource" that every use case asks instead of hand-written owner checks.

Plain code with no web framework, so use cases import it without depending on FastAPI (the tokens
and the request dependencies that produce a Principal are in :mod:`kyso_kit.auth`, which re-exports
these names).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from .errors import Forbidden, forbidden

Role = Literal["subscriber", "sales_agent", "operator", "auditor"]
ROLES: tuple[Role, ...] = ("subscriber", "sales_agent", "operator", "auditor")


@dataclass(frozen=True)
class Principal:
    """Who is calling: an account, the organisation it acts for (if any) and its roles."""

    account_id: str
    roles: frozenset[str] = field(default_factory=lambda: frozenset({"subscriber"}))
    organisation_id: str | None = None
    auth_time: int | None = None
    amr: tuple[str, ...] = ()

    def has(self, role: Role) -> bool:
        return role in self.roles


Action = Literal["read", "write", "sign"]


def may(who: Principal, owner_account_id: str | None, action: Action = "write") -> bool:
    """May ``who`` act on a resource owned by ``owner_account_id``?

    The owner may; an operator may read or change anything but never ``sign`` (sole control of a
    signing key stays with its subscriber); an auditor may read anything.
    """
    if owner_account_id is not None and who.account_id == owner_account_id:
        return True
    if action == "sign":
        return False
    if who.has("operator"):
        return True
    return action == "read" and who.has("auditor")


def ensure_may(who: Principal, owner_account_id: str | None, action: Action = "write") -> None:
    if not may(who, owner_account_id, action):
        raise forbidden()


def ensure_role(who: Principal, role: Role) -> None:
    if not who.has(role):
        raise Forbidden("role_required", f"This needs the {role} role", "Bạn không có quyền thực hiện thao tác này")
