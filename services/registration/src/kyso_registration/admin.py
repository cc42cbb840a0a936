"""``kyso-admin``: what an administrator does outside the API — create operator, auditor and sales-agent accounts.

    uv run kyso-admin create-operator --phone +84901234567 [--role operator|auditor|sales_agent]

The password is read from the KYSO_ADMIN_PASSWORD environment variable or asked for (never an argument,
so it stays out of shell history and process lists).
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys

from kyso_kit.runtime import ServiceRuntime

from .core import build_core
from .settings import RegistrationSettings


async def create_operator(settings: RegistrationSettings, phone: str, password: str, roles: list[str]) -> str:
    rt = ServiceRuntime(settings)
    try:
        uc = build_core(rt.store, rt.clock, settings)
        await uc.accounts.init()
        return await uc.accounts.create_operator(phone, password, roles)
    finally:
        await rt.mongo.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kyso-admin", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    op = sub.add_parser("create-operator", help="create an operator, auditor or sales-agent account")
    op.add_argument("--phone", required=True)
    op.add_argument("--role", action="append", choices=["operator", "auditor", "sales_agent"], dest="roles")
    args = parser.parse_args(argv)
    password = os.environ.get("KYSO_ADMIN_PASSWORD") or getpass.getpass("Password: ")
    try:
        account_id = asyncio.run(
            create_operator(RegistrationSettings(), args.phone, password, args.roles or ["operator"])
        )
    except Exception as exc:  # a readable line, not a traceback, for an operator at a terminal
        print(f"kyso-admin: {exc}", file=sys.stderr)
        return 1
    print(account_id)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
