"""A fix for fpdf2 2.8.9's line measuring: it measures a line as it grows by re-adding the width of every
character on it for each character it adds, quadratic per line and half of a contract's layout time.

``fast_line_widths()`` replaces ``Fragment.get_width`` with a running per-fragment sum of whole font
units, bit-identical to fpdf2's widths. Applied once at start-up by ``kyso_signing.patches``; a test
renders both documents both ways and compares the bytes (``tests/service/test_pdfs.py``), another fails
if fpdf2's method changes (``tests/unit/test_patches.py``).
"""

from __future__ import annotations

from fpdf.fonts import TTFFont
from fpdf.line_break import Fragment

_FPDF_GET_WIDTH = Fragment.get_width


def _running_width(
    self: Fragment, start: int = 0, end: int | None = None, chars: str | None = None, initial_cs: bool = True
) -> float:
    """fpdf2 2.8.9 measures a line as it grows by re-adding the width of every character on it for each
    character it adds — quadratic per line, half of a contract's layout time. This keeps, per fragment, the
    running sum of its characters' widths: TrueType widths are whole font units, so the sum is exact and
    every width is bit-identical to fpdf2's (a test renders both ways and compares bytes). Anything but a
    whole fragment of plain TrueType text goes to fpdf2 itself."""
    font = self.font
    if (
        start
        or end is not None
        or self.text_shaping_parameters
        or self.font_stretching != 100
        or self.char_spacing != 0
        or not isinstance(font, TTFFont)
        or font.is_symbol
    ):
        return _FPDF_GET_WIDTH(self, start, end, chars, initial_cs)
    total: float = 0  # whole font units (fpdf2 rounds each glyph's width), so the sum is exact
    if chars is not None:  # a character about to be added, measured alone
        for c in chars:
            total += font.cw[ord(c)]
    else:
        characters = self.characters
        summed, counted, total = getattr(self, "_kyso_sum", (None, 0, 0))
        if summed is not characters or counted > len(characters):  # trimming replaces the list: count afresh
            counted, total = 0, 0
        for c in characters[counted:]:
            total += font.cw[ord(c)]
        setattr(self, "_kyso_sum", (characters, len(characters), total))  # noqa: B010 - fpdf2's class, our field
    size = self.font_size_pt
    if size > font.biggest_size_pt:
        font.biggest_size_pt = size
    return total * size * 0.001 / self.k


def fast_line_widths(on: bool = True) -> None:
    """Use the running sum for line widths (on by default; ``False`` restores fpdf2's own)."""
    Fragment.get_width = _running_width if on else _FPDF_GET_WIDTH  # type: ignore[method-assign]
