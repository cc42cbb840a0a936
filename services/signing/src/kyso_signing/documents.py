"""The texts a subscriber agrees to and signs. Deterministic, so their hashes can be checked later."""

from __future__ import annotations

import hashlib
from typing import Any

from kyso_kit.timeutil import local


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def service_contract(contract_id: str, provider: str, order: dict[str, Any]) -> bytes:
    s = order["subscriber"]
    return "\n".join(
        [
            "HỢP ĐỒNG CUNG CẤP DỊCH VỤ CHỨNG THỰC CHỮ KÝ SỐ TỪ XA / REMOTE SIGNING SERVICE CONTRACT",
            f"Số hợp đồng / Contract no.: {contract_id}",
            f"Bên cung cấp / Provider: {provider}",
            f"Thuê bao / Subscriber: {s['full_name']} — CCCD {s['citizen_id']} — sinh ngày {s['date_of_birth']}",
            f"Gói dịch vụ / Package: {order['package_code']} ({order['validity_years']} năm / years)",
            f"Giá / Price: {order['amount_vnd']:,} đồng (VND)".replace(",", "."),
            f"Mã đơn hàng / Order: {order['order_id']}",
            "Thuê bao đồng ý các điều khoản sử dụng dịch vụ ký số từ xa và cam kết bảo mật mã PIN.",
            "The subscriber accepts the remote signing terms and undertakes to keep the PIN secret.",
        ]
    ).encode()


def acceptance_record(certificate_id: str, cert: dict[str, Any]) -> bytes:
    return "\n".join(
        [
            "BIÊN BẢN NGHIỆM THU DỊCH VỤ / SERVICE ACCEPTANCE RECORD",
            f"Mã chứng thư / Certificate id: {certificate_id}",
            f"Số hiệu / Serial: {cert['serial_number']}",
            f"Chủ thể / Subject: {cert['subject_dn']}",
            f"Hiệu lực / Valid: {local(cert['not_before'])} — {local(cert['not_after'])}",
            "Thuê bao xác nhận đã nhận và kích hoạt chứng thư số trên.",
            "The subscriber confirms receipt and activation of the certificate above.",
        ]
    ).encode()
