"""The third-party monkeypatches (``kyso_signing.patches``): applied once, at start-up, and only there; and
each fails loudly when the upstream code it replaces changes shape. The copies were written from
asn1crypto 1.5.1 and fpdf2 2.8.9: a new release may fix the bug (asn1crypto PR #302) or measure lines
differently, and then the patch must be re-read against it or dropped — not silently kept."""

from __future__ import annotations

import hashlib
import inspect
import subprocess
import sys
from collections.abc import Callable
from typing import Any

from asn1crypto import core
from fpdf.fonts import TTFFont
from fpdf.line_break import Fragment

from kyso_signing import patches
from kyso_signing.documents import fpdf_fix
from kyso_signing.pki import asn1_fix


def _source_sha(fn: Callable[..., Any]) -> str:
    return hashlib.sha256(inspect.getsource(fn).encode()).hexdigest()


ASN1CRYPTO_DUMPS = {  # asn1crypto 1.5.1: the five dump methods asn1_fix copies, and the header writer it calls
    "Asn1Value": "6a16147b803e8c2a2e3b26b2aedc31dc1df78313a8fab321bf2bfb719308d303",
    "Choice": "93c59b4f81bc8b5e2d27f4d65341932ce0bc4cbb0d16fca3d9f65f8f57fe450b",
    "Primitive": "424191d6a254140554f61de875bfb84ac44270f197db7ab52df4730f4d916427",
    "Sequence": "d6cb83b88b60c2bee304f9e17c1fce1455c5d9dbd661daaf7511e470a9bdbd73",
    "SequenceOf": "5f5f47f4872865b73f6ae46bd4d62d42849ea5621531639fb15152a55a9ab1f4",
}
ASN1CRYPTO_DUMP_HEADER = "3d898592038c5d01cd0485ccf366e0ab1fe8f8ff3a6f5a1825e50086c284a5c3"
FPDF2_GET_WIDTH = "73b223d7c17cddaff24a3d050610a75e5f1adc27874039c72ddff49b1a7adc48"  # fpdf2 2.8.9 Fragment.get_width
FPDF2_TEXT_WIDTH = "1b23ef463611c420bd3962dcb553c6b7ffb013015fe74cb6b75e2e6b795b3cdb"  # TTFFont.get_text_width


def test_asn1crypto_still_has_the_dump_methods_the_fix_was_copied_from() -> None:
    assert {name: _source_sha(fn) for name, fn in asn1_fix.ORIGINALS.items()} == ASN1CRYPTO_DUMPS
    assert _source_sha(core._dump_header) == ASN1CRYPTO_DUMP_HEADER


def test_fpdf2_still_measures_lines_the_way_the_running_sum_reproduces() -> None:
    assert _source_sha(fpdf_fix._FPDF_GET_WIDTH) == FPDF2_GET_WIDTH
    assert _source_sha(TTFFont.get_text_width) == FPDF2_TEXT_WIDTH


def test_apply_installs_both_patches_and_is_idempotent() -> None:
    patches.apply()
    patches.apply()
    assert Fragment.get_width is fpdf_fix._running_width
    assert core.Sequence.dump is asn1_fix._sequence_dump and core.Asn1Value.dump is asn1_fix._asn1value_dump


def test_importing_the_rooms_patches_nothing() -> None:
    """Only ``patches.apply()`` patches: importing every module that uses pyHanko or fpdf2 leaves both as shipped."""
    code = (
        "from asn1crypto import core\n"
        "from fpdf.line_break import Fragment\n"
        "import kyso_signing.documents.pades, kyso_signing.documents.layout, kyso_signing.pki.tsa\n"
        "import kyso_signing.remote.csc, kyso_signing.flows.pdfs\n"
        "assert Fragment.get_width.__module__ == 'fpdf.line_break', Fragment.get_width\n"
        "assert core.Sequence.dump.__module__ == 'asn1crypto.core', core.Sequence.dump\n"
        "from kyso_signing import patches\n"
        "patches.apply()\n"
        "assert Fragment.get_width.__module__ == 'kyso_signing.documents.fpdf_fix'\n"
        "assert core.Sequence.dump.__module__ == 'kyso_signing.pki.asn1_fix'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
