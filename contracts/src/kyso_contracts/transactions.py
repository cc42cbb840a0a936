"""What a transaction-bound code authorises, and its digest (dynamic linking, SCAL2).

The device and the verifying service compute the same digest from the same transaction; the OTP is
computed over that digest, so changing the amount, the payee or any document invalidates the code.

    payment:   sha256("kyso-tx-v1|payment|<amount in đồng>|<payee>")
    documents: sha256("kyso-tx-v1|documents|<sorted lower-case document digests in hex, comma-separated>")
"""

from __future__ import annotations

import hashlib
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from .types import Vnd


def _type_required(schema: dict[str, Any]) -> None:
    # Inside the tagged union the tag must be sent (the server refuses a transaction without it);
    # the default exists only for building one in Python.
    schema["required"] = ["type", *[f for f in schema.get("required", []) if f != "type"]]


class PaymentTransaction(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_extra=_type_required)
    type: Literal["payment"] = "payment"
    amount_vnd: Vnd
    payee: Annotated[str, StringConstraints(min_length=1, max_length=200)]

    def digest(self) -> str:
        return hashlib.sha256(f"kyso-tx-v1|payment|{self.amount_vnd}|{self.payee}".encode()).hexdigest()


DocumentHashHex = Annotated[str, StringConstraints(pattern=r"^([0-9a-f]{64}|[0-9a-f]{96}|[0-9a-f]{128})$")]
"""A SHA-256, SHA-384 or SHA-512 document digest, lower-case hex."""


class DocumentsTransaction(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_extra=_type_required)
    type: Literal["documents"] = "documents"
    document_hashes: list[DocumentHashHex] = Field(min_length=1, max_length=100)

    def digest(self) -> str:
        joined = ",".join(sorted(set(self.document_hashes)))
        return hashlib.sha256(f"kyso-tx-v1|documents|{joined}".encode()).hexdigest()


Transaction = Annotated[PaymentTransaction | DocumentsTransaction, Field(discriminator="type")]
