"""A fix for asn1crypto 1.5.1 (the latest release, used by pyHanko): its ``dump()`` methods take any
header whose *last byte* is 0x80 for an indefinite length and then re-encode the value from scratch,
recursively (wbond/asn1crypto#249, PR #302, unreleased). A definite long-form length ending in 0x80
(128, 384, 640, … bytes: ``81 80``, ``82 01 80``) trips it, so whether a CMS structure is re-encoded
depends on the sizes of random values (an ECDSA signature, a serial): we measured a provider seal
taking 0.04 s or 1–9 s for the same input (``bench/pades.py``). The output is the same DER either
way; only the time differs.

``apply()`` replaces the five ``dump`` methods with copies whose only change is the test: a length
octet of exactly 0x80 after a tag, in any header of the chain (explicit tags stack headers). Applied
once at start-up by ``kyso_signing.patches``; a test checks the bytes are unchanged
(``tests/unit/test_asn1_fix.py``), another fails if asn1crypto's methods change (``tests/unit/test_patches.py``).
"""

from __future__ import annotations

from typing import Any

from asn1crypto import core

_applied = False
_PATCHED = (core.Asn1Value, core.Choice, core.Primitive, core.Sequence, core.SequenceOf)
ORIGINALS = {cls.__name__: cls.__dict__["dump"] for cls in _PATCHED}
"""asn1crypto's own ``dump`` methods, as imported (what the copies below were written from)."""


def indefinite(header: bytes | None) -> bool:
    """Whether any header in ``header`` (one or more stacked tag-length headers) has an indefinite length."""
    if not header:
        return False
    pos = 0
    while pos < len(header):
        first = header[pos]
        pos += 1
        if first & 0x1F == 0x1F:  # high tag number: continuation bytes have the top bit set
            while pos < len(header) and header[pos] & 0x80:
                pos += 1
            pos += 1
        if pos >= len(header):
            return False
        length = header[pos]
        if length == 0x80:
            return True
        pos += 1 + (length & 0x7F if length & 0x80 else 0)
    return False


def _asn1value_dump(self: Any, force: bool = False) -> bytes:
    contents = self.contents
    if indefinite(self._header):
        force = True
    if self._header is None or force:
        if isinstance(self, core.Constructable) and self._indefinite:
            self.method = 0
        header = core._dump_header(self.class_, self.method, self.tag, self.contents)
        if self.explicit is not None:
            for class_, tag in self.explicit:
                header = core._dump_header(class_, 1, tag, header + self.contents) + header
        self._header = header
        self._trailer = b""
    out: bytes = self._header + contents + self._trailer
    return out


def _choice_dump(self: Any, force: bool = False) -> bytes:
    if indefinite(self._header):
        force = True
    self._contents = self.chosen.dump(force=force)
    if self._header is None or force:
        self._header = b""
        if self.explicit is not None:
            for class_, tag in self.explicit:
                self._header = core._dump_header(class_, 1, tag, self._header + self._contents) + self._header
    out: bytes = self._header + self._contents
    return out


def _primitive_dump(self: Any, force: bool = False) -> bytes:
    if indefinite(self._header):
        force = True
    if force:
        native = self.native
        self.contents = None
        self.set(native)
    return _asn1value_dump(self)


def _sequence_dump(self: Any, force: bool = False) -> bytes:
    if indefinite(self._header):
        force = True
    if force and self._fields == [] and self.__class__ is core.Sequence:
        force = False
    if force:
        self._set_contents(force=force)
    if self._fields and self.children is not None:
        for index, (field_name, _, params) in enumerate(self._fields):
            if self.children[index] is not core.VOID:
                continue
            if "default" in params or "optional" in params:
                continue
            raise ValueError(f'Field "{field_name}" is missing from structure')
    return _asn1value_dump(self)


def _sequence_of_dump(self: Any, force: bool = False) -> bytes:
    if indefinite(self._header):
        force = True
    if force:
        self._set_contents(force=force)
    return _asn1value_dump(self)


def apply() -> None:
    global _applied
    if _applied:
        return
    core.Asn1Value.dump = _asn1value_dump  # type: ignore[method-assign]
    core.Choice.dump = _choice_dump  # type: ignore[method-assign]
    core.Primitive.dump = _primitive_dump  # type: ignore[method-assign]
    core.Sequence.dump = _sequence_dump  # type: ignore[method-assign]
    core.SequenceOf.dump = _sequence_of_dump  # type: ignore[method-assign]
    _applied = True
