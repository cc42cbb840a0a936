"""kyso-token, the SmartOTP app on the command line, against the running otp service."""

from __future__ import annotations

import asyncio
import io
import json
import re
import sys
from contextlib import redirect_stdout
from pathlib import Path

import pytest

from kyso_client import cli
from kyso_client.api import Endpoints, KysoApi
from kyso_contracts.transactions import PaymentTransaction

from .helpers import new_citizen, sms_verified


def run_cli(args: list[str], pins: list[str], monkeypatch: pytest.MonkeyPatch) -> tuple[int, str]:
    monkeypatch.setattr(sys, "stdin", io.StringIO("".join(p + "\n" for p in pins)))
    out = io.StringIO()
    with redirect_stdout(out):
        rc = cli.main(args)
    return rc, out.getvalue()


async def test_activate_show_codes_change_pin_and_sync_from_the_command_line(
    api: KysoApi, endpoints: Endpoints, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    c = await new_citizen(api)
    enrol = await api.smartotp_enrol(
        c.account_id, await sms_verified(c, "smartotp_enrolment"), (await api.smartotp_terms())["version"]
    )
    token_file = tmp_path / "token.json"
    activate = ["activate", "--otp-url", endpoints.otp, "--token-id", enrol["token_id"]]
    activate += ["--activation-code", enrol["activation_code"]]
    base = ["--token-file", str(token_file), "--pin-stdin"]

    def cli_call(args: list[str], pins: list[str]) -> tuple[int, str]:
        return run_cli(base + args, pins, monkeypatch)

    rc, _ = await asyncio.to_thread(
        cli_call,
        activate,
        ["123456", "123456"],
    )
    assert rc == 2 and not token_file.exists()  # a trivial PIN is refused before anything is stored
    # The PIN is chosen before the server is called, so the refused attempt did not use the code up.
    rc, out = await asyncio.to_thread(
        cli_call,
        activate,
        ["730514", "730514"],
    )
    assert rc == 0, out
    stored = json.loads(token_file.read_text())
    assert "730514" not in token_file.read_text() and "seed" not in stored  # only the sealed seed
    assert re.search(r"(\d{6})\s*$", out.strip())  # the first code to finish enrolment is shown

    rc, out = await asyncio.to_thread(cli_call, ["change-pin"], ["730514", "918273", "918273"])
    assert rc == 0 and "changed" in out
    rc, _ = await asyncio.to_thread(cli_call, ["code"], ["730514"])
    assert rc == 2  # the old PIN is refused on the device (or, rarely, yields a wrong code)
    rc, out = await asyncio.to_thread(cli_call, ["sync", "--otp-url", endpoints.otp], [])
    assert rc == 0 and "offset" in out

    rc, out = await asyncio.to_thread(cli_call, ["tx-code", "--amount", "800000", "--payee", "kyso"], ["918273"])
    assert rc == 0
    code = out.strip().splitlines()[-1]
    tx = PaymentTransaction(amount_vnd=800_000, payee="kyso")
    # Any code of the device finishes enrolment; here the inline transaction code does.
    out_tx = await api.smartotp_verify_transaction(stored["token_id"], code, tx.model_dump())
    assert out_tx["valid"] and out_tx["status"] == "active"
    rc, out = await asyncio.to_thread(cli_call, ["code"], ["918273"])
    assert rc == 0 and re.match(r"^\d{6}  \(valid for \d+s\)$", out.strip())
