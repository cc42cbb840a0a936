"""The two documents a subscriber receives, as PDF files in Vietnamese (with English beside it): the
service contract and the service acceptance record (biên bản nghiệm thu).

The font is Be Vietnam Pro, shipped by the ``fontpkg-be-vietnam-pro`` package and embedded (subset)
in every file, so diacritics render the same in any reader; nothing is fetched at run time. A file
is drawn up once and stored: the consent and the signatures bind to its SHA-256, never to a
re-rendering. Rendering is nevertheless deterministic (creation date = the moment given, no random
file identifier), so the same inputs give the same bytes.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache
from pathlib import Path
from typing import Any

import fontpkg_be_vietnam_pro
from cryptography import x509
from fpdf import FPDF
from fpdf.enums import XPos, YPos
from fpdf.fonts import TTFFont

from kyso_kit.timeutil import VN, as_utc

FONT = "BeVietnamPro"
INK = (20, 40, 80)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@cache
def _font_files() -> dict[str, str]:
    root = Path(fontpkg_be_vietnam_pro.__file__).parent / "files"
    files = {"": root / "BeVietnamPro-Regular.ttf", "B": root / "BeVietnamPro-Bold.ttf"}
    files["I"] = root / "BeVietnamPro-Italic.ttf"
    missing = [str(p) for p in files.values() if not p.is_file()]
    if missing:
        raise RuntimeError(f"font files missing: {missing}")
    return {k: str(v) for k, v in files.items()}


def _subject(cert: dict[str, Any]) -> dict[str, str]:
    """The subject's attributes by short name (CN, O, UID, L, ST, C), read from the certificate itself."""
    name = x509.load_pem_x509_certificate(cert["certificate_pem"].encode()).subject
    attrs: dict[str, str] = {}
    for a in name:  # UID may repeat (CCCD and MST): both are shown
        key = a.rfc4514_attribute_name
        attrs[key] = f"{attrs[key]}, {a.value!s}" if key in attrs else str(a.value)
    return attrs


def _dob(value: Any) -> str:
    try:
        return date.fromisoformat(str(value)).strftime("%d/%m/%Y")
    except ValueError:
        return str(value)


def _vnd(amount: int) -> str:
    return f"{amount:,}".replace(",", ".") + " đồng"


def _when(t: datetime) -> str:
    return as_utc(t).astimezone(VN).strftime("%H:%M:%S ngày %d/%m/%Y (UTC+7)")


@dataclass(frozen=True)
class Rendered:
    pdf: bytes
    text: str  # the same content as plain text, for apps that show it inline

    @property
    def sha256(self) -> str:
        return sha256_hex(self.pdf)


class _Doc:
    """A one-column A4 document: a title, labelled fields, numbered clauses, signature boxes."""

    def __init__(self, title: str, subtitle: str, at: datetime, provider: str) -> None:
        self.pdf = FPDF(format="A4", unit="mm")
        self.pdf.set_creation_date(as_utc(at).replace(microsecond=0))
        self.pdf.set_title(title)
        self.pdf.set_author(provider)
        self.pdf.set_creator("kyso")
        self.pdf.set_lang("vi-VN")
        self.pdf.set_margins(18, 16, 18)
        self.pdf.set_auto_page_break(True, margin=18)
        for style, path in _font_files().items():
            self.pdf.add_font(FONT, style, path)
        for font in self.pdf.fonts.values():
            # Subsetting keeps every outline as it is, so the bounding boxes stay right: not recomputing
            # them spares decompiling and recompiling each glyph (a third of the cost of a document).
            if isinstance(font, TTFFont):
                font.ttfont.recalcBBoxes = False
        self.pdf.add_page()
        self.lines: list[str] = []
        self._line("CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM", "B", 11, align="C")
        self._line("Độc lập – Tự do – Hạnh phúc", "B", 10, align="C", gap=6)
        self._line(title, "B", 15, align="C", ink=INK)
        self._line(subtitle, "I", 10, align="C", gap=5)

    def _line(
        self, text: str, style: str = "", size: float = 10, *, align: str = "L", ink: Any = None, gap: float = 1
    ) -> None:
        self.pdf.set_font(FONT, style, size)
        self.pdf.set_text_color(*(ink or (0, 0, 0)))
        self.pdf.multi_cell(0, size * 0.5, text, align=align, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.pdf.ln(gap)
        self.lines.append(text)

    def heading(self, text: str) -> None:
        self.pdf.ln(2)
        self._line(text, "B", 11.5, ink=INK, gap=1.5)

    def field(self, label: str, value: str) -> None:
        self.pdf.set_font(FONT, "", 10)
        self.pdf.set_text_color(90, 90, 90)
        self.pdf.cell(62, 5.5, label)
        self.pdf.set_text_color(0, 0, 0)
        self.pdf.set_font(FONT, "B", 10)
        self.pdf.multi_cell(0, 5.5, value, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.lines.append(f"{label}: {value}")

    def clause(self, n: int, vi: str, en: str) -> None:
        self._line(f"{n}. {vi}", "", 10, align="J", gap=0.5)
        self._line(en, "I", 8.5, align="J", ink=(90, 90, 90), gap=1.5)

    def signatures(self, left: str, right: str, note: str) -> None:
        self.pdf.ln(6)
        y = self.pdf.get_y()
        w = (self.pdf.w - self.pdf.l_margin - self.pdf.r_margin) / 2
        for i, who in enumerate((left, right)):
            self.pdf.set_xy(self.pdf.l_margin + i * w, y)
            self.pdf.set_font(FONT, "B", 10)
            self.pdf.multi_cell(w, 5, who, align="C", new_x=XPos.RIGHT, new_y=YPos.TOP)
        self.pdf.set_xy(self.pdf.l_margin, y + 12)
        self._line(note, "I", 8.5, align="C", ink=(90, 90, 90))
        self.lines += [left, right]

    def render(self) -> Rendered:
        return Rendered(bytes(self.pdf.output()), "\n".join(self.lines))


def service_contract(contract_id: str, provider: str, order: dict[str, Any], at: datetime) -> Rendered:
    s = order["subscriber"]
    d = _Doc(
        "HỢP ĐỒNG CUNG CẤP DỊCH VỤ CHỨNG THỰC CHỮ KÝ SỐ TỪ XA",
        "Remote signing certificate service contract",
        at,
        provider,
    )
    d.field("Số hợp đồng / Contract no.", contract_id)
    d.field("Lập lúc / Drawn up at", _when(at))
    d.field("Mã đơn hàng / Order", order["order_id"])
    d.heading("Bên A – Bên cung cấp dịch vụ / The provider")
    d.field("Tên / Name", provider)
    d.field("Dịch vụ / Service", "Chứng thư số ký từ xa (remote signing)")
    d.heading("Bên B – Thuê bao / The subscriber")
    org = order.get("organisation")
    if org:
        d.field("Tổ chức / Organisation", org["name"])
        d.field("Mã số thuế / Tax code", org["tax_code"])
        d.field("Địa chỉ / Address", org["address"])
        d.field("Người đại diện theo pháp luật / Legal representative", org["legal_representative"])
        kind = order.get("certificate_kind")
        d.field(
            "Loại chứng thư / Certificate",
            "Chứng thư số tổ chức / Organisation certificate"
            if kind == "organisation"
            else "Cá nhân thuộc tổ chức / Individual in an organisation",
        )
        d.heading("Người được ủy quyền / The authorised person")
    d.field("Họ và tên / Full name", s["full_name"])
    d.field("Số CCCD / Citizen ID", s["citizen_id"])
    d.field("Ngày sinh / Date of birth", _dob(s["date_of_birth"]))
    place = ", ".join(p for p in (s.get("locality"), s.get("province")) if p)
    if place:
        d.field("Nơi cư trú / Residence", place)
    d.field("Email", order.get("email", ""))
    d.heading("Gói dịch vụ / Package")
    d.field("Mã gói / Package", order["package_code"])
    d.field("Thời hạn / Validity", f"{order['validity_years']} năm / years")
    d.field("Thuật toán khóa / Key", order.get("key_algorithm", "ecdsa-p256"))
    d.field("Giá (đã gồm VAT) / Price", _vnd(order["amount_vnd"]))
    d.heading("Điều khoản / Terms")
    d.clause(
        1,
        "Bên A cấp cho Bên B một chứng thư số ký từ xa; khóa ký của Bên B được tạo và lưu giữ mã hóa tại hệ thống "
        "của Bên A và chỉ được dùng khi Bên B xác nhận bằng mã PIN ký số và mã OTP.",
        "The provider issues a remote signing certificate; the key is generated and kept encrypted by the provider "
        "and used only when the subscriber confirms with the signing PIN and a one-time code.",
    )
    d.clause(
        2,
        "Bên B giữ bí mật mã PIN ký số; nhập sai 5 lần liên tiếp thì mã PIN bị khóa cho tới khi Bên B mở khóa.",
        "The subscriber keeps the signing PIN secret; five wrong entries in a row lock it until the subscriber "
        "unlocks it.",
    )
    d.clause(
        3,
        "Bên B có thể tạm dừng, khôi phục hoặc thu hồi chứng thư số bất kỳ lúc nào; trạng thái được công bố "
        "qua CRL và OCSP.",
        "The subscriber may suspend, resume or revoke the certificate at any time; its status is published by "
        "CRL and OCSP.",
    )
    d.clause(
        4,
        "Chữ ký số tạo bằng chứng thư này có giá trị pháp lý theo Luật Giao dịch điện tử 2023.",
        "Signatures made with this certificate have legal effect under the 2023 Law on Electronic Transactions.",
    )
    d.heading("Ghi nhận đồng ý / Consent record")
    d.clause(
        5,
        "Bên B giao kết hợp đồng bằng mã OTP gửi qua SMS, gắn với mã băm SHA-256 của chính tệp này. Sau khi "
        "Bên B đồng ý, Bên A đóng dấu số (PAdES) lên tệp, kèm dấu thời gian và thông tin thu hồi.",
        "The subscriber consents with an SMS one-time code bound to the SHA-256 of this very file. After "
        "consent the provider seals it (PAdES) with a timestamp and revocation data.",
    )
    d.signatures("ĐẠI DIỆN BÊN A\n(con dấu số)", "BÊN B\n(đồng ý bằng OTP)", "Hợp đồng được ký số; không cần bản giấy.")
    return d.render()


def acceptance_record(certificate_id: str, cert: dict[str, Any], provider: str, activated_at: datetime) -> Rendered:
    d = _Doc(
        "BIÊN BẢN NGHIỆM THU DỊCH VỤ CHỨNG THỰC CHỮ KÝ SỐ",
        "Service acceptance record",
        activated_at,
        provider,
    )
    d.field("Bên cung cấp / Provider", provider)
    d.field("Mã chứng thư / Certificate id", certificate_id)
    d.field("Số hiệu / Serial number", cert["serial_number"])
    subject = _subject(cert)
    d.field("Chủ thể / Subject", subject.pop("CN", ""))
    if "O" in subject:
        d.field("Tổ chức / Organisation", subject.pop("O"))
    if "UID" in subject:
        d.field("Định danh / Identifier", subject.pop("UID"))
    place = ", ".join(subject[k] for k in ("L", "ST") if k in subject)
    if place:
        d.field("Nơi cư trú / Residence", place)
    d.field("Hiệu lực từ / Valid from", _when(cert["not_before"]))
    d.field("Hiệu lực đến / Valid until", _when(cert["not_after"]))
    d.field("Thuật toán khóa / Key", cert.get("key_algorithm", "ecdsa-p256"))
    d.field("Kích hoạt lúc / Activated at", _when(activated_at))
    d.heading("Nội dung nghiệm thu / Acceptance")
    d.clause(
        1,
        "Bên B xác nhận đã nhận và kích hoạt chứng thư số nêu trên, đã đặt mã PIN ký số và đã kiểm tra thông tin "
        "chủ thể là đúng.",
        "The subscriber confirms receipt and activation of the certificate above, has set a signing PIN and "
        "checked that the subject is correct.",
    )
    d.clause(
        2,
        "Dịch vụ được bàn giao đầy đủ theo hợp đồng. Bên B ký biên bản này bằng chính chứng thư vừa kích hoạt.",
        "The service is delivered as contracted. The subscriber signs this record with the certificate just activated.",
    )
    d.signatures("ĐẠI DIỆN BÊN A", "BÊN B\n(ký số bằng chứng thư trên)", "Biên bản được ký số; không cần bản giấy.")
    return d.render()
