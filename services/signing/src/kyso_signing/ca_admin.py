"""``kyso-ca``: make the CA hierarchy production starts from, outside the running service.

    SIGNING_MASTER_KEY=… uv run kyso-ca new-hierarchy [--organisation …] [--root-cn …] [--issuing-cn …]

Prints the four settings production needs (CA_ROOT_CERTIFICATE, CA_ROOT_KEY_SEALED,
CA_ISSUING_CERTIFICATE, CA_ISSUING_KEY_SEALED) as an env file. The private keys leave this command
only sealed under the master key, so the printout is safe to hand to a secret store; it never holds
a key in the clear. The issuing CA certificate's CRL and AIA URLs come from PKI_BASE_URL.
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import timedelta

from kyso_kit.clock import SystemClock
from kyso_kit.crypto import SecretBox
from kyso_signing.bootstrap import hierarchy
from kyso_signing.pki.hierarchy import ISSUING, ROOT, Hierarchy, new_hierarchy
from kyso_signing.settings import SigningSettings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kyso-ca", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    new = sub.add_parser("new-hierarchy", help="a new root (ECDSA P-384) and issuing CA (ECDSA P-256)")
    new.add_argument("--organisation")
    new.add_argument("--root-cn")
    new.add_argument("--issuing-cn")
    args = parser.parse_args(argv)
    if not os.environ.get("SIGNING_MASTER_KEY"):
        print("kyso-ca: set SIGNING_MASTER_KEY to the production master key the keys are sealed under", file=sys.stderr)
        return 2
    try:
        settings = SigningSettings(KYSO_PROFILE="development")  # production would demand the CA it is making
        h = hierarchy(settings)
        h = Hierarchy(
            organisation=args.organisation or h.organisation,
            root_common_name=args.root_cn or h.root_common_name,
            issuing_common_name=args.issuing_cn or h.issuing_common_name,
            urls=h.urls,
            policy_oid=h.policy_oid,
            responder_validity=timedelta(hours=settings.ocsp_responder_validity_hours),
            tax_code=h.tax_code,
        )
        assert settings.master_key_b64
        made = new_hierarchy(SecretBox(settings.master_key_b64), h, SystemClock())
    except Exception as exc:
        print(f"kyso-ca: {exc}", file=sys.stderr)
        return 1
    for env, value in (
        ("CA_ROOT_CERTIFICATE", made[ROOT]["certificate_pem"]),
        ("CA_ROOT_KEY_SEALED", made[ROOT]["key"]),
        ("CA_ISSUING_CERTIFICATE", made[ISSUING]["certificate_pem"]),
        ("CA_ISSUING_KEY_SEALED", made[ISSUING]["key"]),
    ):
        print(f'{env}="{value.strip()}"')  # a double-quoted multi-line value, as env files allow
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
