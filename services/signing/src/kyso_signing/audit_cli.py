"""``kyso-audit``: a subscriber's evidence, exported from the signing database, and verified offline.

    uv run kyso-audit export --account <account id> [--out evidence.json]
    uv run kyso-audit verify evidence.json

``export`` reads the signing service's database (the usual MONGODB_URL / MONGODB_DATABASE settings):
that subscriber's entries in full, everyone else's as links only, the signed checkpoints and the
provider seal key. ``verify`` needs nothing but the file: it recomputes every link and checks every
checkpoint signature, and exits 1 naming each entry that was altered.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from kyso_kit.runtime import ServiceRuntime
from kyso_signing.remote.evidence import AuditLog, verify_export
from kyso_signing.settings import SigningSettings


async def export(settings: SigningSettings, account_id: str) -> dict[str, Any]:
    rt = ServiceRuntime(settings)
    try:
        seal = await rt.store.collection("authority").get("provider-seal")
        if seal is None:
            raise RuntimeError("no provider seal in this database")
        return await AuditLog(rt.store, rt.clock).export(account_id, seal["public_key_pem"])
    finally:
        await rt.mongo.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kyso-audit", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    ex = sub.add_parser("export", help="a subscriber's evidence as JSON")
    ex.add_argument("--account", required=True)
    ex.add_argument("--out", type=Path)
    ve = sub.add_parser("verify", help="verify an export: links, contents, checkpoint signatures")
    ve.add_argument("file", type=Path)
    args = parser.parse_args(argv)
    if args.command == "export":
        try:
            doc = asyncio.run(export(SigningSettings(), args.account))
        except Exception as exc:
            print(f"kyso-audit: {exc}", file=sys.stderr)
            return 1
        text = json.dumps(doc, ensure_ascii=False, indent=2)
        if args.out:
            args.out.write_text(text + "\n")
        else:
            print(text)
        return 0
    problems = verify_export(json.loads(args.file.read_text()))
    for p in problems:
        print(f"BAD {p}")
    if not problems:
        entries = json.loads(args.file.read_text())["entries"]
        print(f"ok: {len(entries)} links, {sum('entry' in e for e in entries)} entries of the subscriber verified")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
