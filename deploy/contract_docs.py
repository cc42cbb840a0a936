"""Generate the documents outside subscribers build against, from the code itself:

* ``contracts/schemas/<event type>.json`` — JSON Schema of every event envelope (from the pydantic models);
* ``contracts/asyncapi.json`` — AsyncAPI 3.0 of the four services (FastStream renders it from their
  real subscribers and publishers).

Both are the reader's contract: objects allow additional properties (readers ignore fields and extension
attributes they do not know), and the description says an event may come twice (deduplicate on ``id``).

    uv run python deploy/contract_docs.py          # rewrite both
Tests fail when the committed files drift from what this renders.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from faststream.specification import AsyncAPI

from kyso_contracts import schemas
from kyso_contracts.envelope import DELIVERED_MORE_THAN_ONCE, READERS_IGNORE_UNKNOWN

ROOT = Path(__file__).resolve().parent.parent
SCHEMA_DIR = ROOT / "contracts" / "schemas"
ASYNCAPI_PATH = ROOT / "contracts" / "asyncapi.json"

# Fixed, environment-independent settings so the rendering is reproducible.
_DOC_ENV = {
    "KAFKA_BOOTSTRAP_SERVERS": "kafka:9092",
    "MONGODB_URL": "mongodb://mongo:27017/",
    "KYSO_PROFILE": "development",
}


def asyncapi_document() -> dict[str, Any]:
    from kyso_otp.bootstrap import build as build_otp
    from kyso_otp.settings import OtpSettings
    from kyso_payment.bootstrap import build as build_payment
    from kyso_payment.settings import PaymentSettings
    from kyso_registration.bootstrap import build as build_registration
    from kyso_registration.settings import RegistrationSettings
    from kyso_signing.bootstrap import build as build_signing
    from kyso_signing.settings import SigningSettings

    runtimes = [
        build_registration(RegistrationSettings(**_DOC_ENV))[0],  # type: ignore[arg-type]
        build_payment(PaymentSettings(**_DOC_ENV))[0],  # type: ignore[arg-type]
        build_signing(SigningSettings(**_DOC_ENV))[0],  # type: ignore[arg-type]
        build_otp(OtpSettings(**_DOC_ENV))[0],  # type: ignore[arg-type]
    ]
    for rt in runtimes:
        rt.consumer.install()
    spec = AsyncAPI(
        *(rt.broker for rt in runtimes),
        title="kyso events",
        version="1.0.0",
        description="Events of the kyso remote-signing services. Every message is a CloudEvents 1.0 envelope "
        "(structured JSON mode) keyed by its aggregate id; see contracts/schemas for each event's JSON Schema. "
        f"{READERS_IGNORE_UNKNOWN} {DELIVERED_MORE_THAN_ONCE}",
        schema_version="3.0.0",
    )
    doc: dict[str, Any] = spec.to_specification().to_jsonable()
    return doc


def render_asyncapi() -> str:
    return json.dumps(asyncapi_document(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main() -> None:
    for path in schemas.write(SCHEMA_DIR):
        print(path.relative_to(ROOT))
    ASYNCAPI_PATH.write_text(render_asyncapi(), encoding="utf-8")
    print(ASYNCAPI_PATH.relative_to(ROOT))


if __name__ == "__main__":
    main()
