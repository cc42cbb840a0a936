"""kyso-token — the SmartOTP app on the command line. PINs are read from the terminal (or, with
--pin-stdin, one per line from standard input) and never leave this machine.

    kyso-token activate --otp-url http://127.0.0.1:8004 --token-id 3f2a… --activation-code 1234567890
    kyso-token code                               # PIN → the current code ("get OTP without logging in")
    kyso-token tx-code --amount 800000 --payee "kyso"  |  --document <sha256> [--document …]
    kyso-token change-pin                         # old → new → confirm
    kyso-token sync --otp-url http://127.0.0.1:8004   # fix "invalid OTP" caused by the device clock
"""

from __future__ import annotations

import argparse
import getpass
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx

from kyso_contracts.transactions import DocumentsTransaction, PaymentTransaction

from .device import SoftToken, WeakPin, WrongPin, pin_problem

DEFAULT_FILE = Path.home() / ".config" / "kyso" / "smartotp.json"


def _pin_reader(from_stdin: bool) -> Callable[[str], str]:
    if from_stdin:
        return lambda _prompt: sys.stdin.readline().rstrip("\n")
    return getpass.getpass


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="kyso-token", description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--token-file", type=Path, default=DEFAULT_FILE)
    p.add_argument("--pin-stdin", action="store_true", help="read PINs from standard input, one per line")
    sub = p.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("activate", help="activate this device with the activation code")
    a.add_argument("--otp-url", required=True)
    a.add_argument("--token-id", required=True, help="the enrolment the code belongs to")
    a.add_argument("--activation-code", required=True)
    a.add_argument("--device-id", default=f"cli-{uuid.uuid4().hex[:12]}")
    sub.add_parser("code", help="show the current code")
    t = sub.add_parser("tx-code", help="a code bound to one transaction")
    t.add_argument("--amount", type=int)
    t.add_argument("--payee")
    t.add_argument("--document", action="append", default=[])
    sub.add_parser("change-pin", help="change the SmartOTP PIN")
    s = sub.add_parser("sync", help="synchronise with the server's clock")
    s.add_argument("--otp-url", required=True)
    args = p.parse_args(argv)
    read_pin = _pin_reader(args.pin_stdin)

    try:
        if args.cmd == "activate":
            # Choose the PIN first: a refused PIN must not use up the single-use activation code.
            pin = read_pin("New SmartOTP PIN (at least 6 digits): ")
            confirm = read_pin("Confirm the PIN: ")
            if pin != confirm:
                raise WeakPin("The two PINs differ")
            problem = pin_problem(pin)
            if problem:
                raise WeakPin(problem)
            resp = httpx.post(
                f"{args.otp_url}/v1/smartotp/activations",
                json={
                    "token_id": args.token_id,
                    "activation_code": args.activation_code,
                    "device_id": args.device_id,
                },
                timeout=10,
            )
            if resp.status_code >= 400:
                print(resp.json()["error"]["message"], file=sys.stderr)
                return 2
            token = SoftToken.from_activation(resp.json(), pin, confirm)
            token.save(args.token_file)
            print(f"activated token {token.token_id}; stored in {args.token_file}")
            print(f"first code (enter it to finish enrolment): {token.code(pin)}")
            return 0
        token = SoftToken.load(args.token_file)
        if args.cmd == "code":
            code = token.code(read_pin("SmartOTP PIN: "))
            left = token.period - token.server_now() % token.period
            print(f"{code}  (valid for {left:.0f}s)")
        elif args.cmd == "tx-code":
            tx: PaymentTransaction | DocumentsTransaction
            if args.document:
                tx = DocumentsTransaction(document_hashes=args.document)
            else:
                tx = PaymentTransaction(amount_vnd=args.amount, payee=args.payee)
            print(token.transaction_code(read_pin("SmartOTP PIN: "), tx))
        elif args.cmd == "change-pin":
            token.change_pin(read_pin("Current PIN: "), read_pin("New PIN: "), read_pin("Confirm new PIN: "))
            token.save(args.token_file)
            print("PIN changed")
        elif args.cmd == "sync":
            before = time.time()
            server = httpx.get(f"{args.otp_url}/v1/time", timeout=10).json()["server_time"]
            offset = token.sync_time(server + (time.time() - before) / 2)
            token.save(args.token_file)
            print(f"clock offset {offset:+.1f}s saved")
    except (WeakPin, WrongPin) as exc:
        print(str(exc), file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
