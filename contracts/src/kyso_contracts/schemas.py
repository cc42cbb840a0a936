"""JSON Schemas of every event envelope, written to ``contracts/schemas/`` for outside subscribers.

python -m kyso_contracts.schemas <dir>     # (re)write the files
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from .envelope import SCHEMA_BASE
from .events import ALL_EVENTS
from .registry import envelope_model


def event_schemas() -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for payload in ALL_EVENTS:
        schema = envelope_model(payload).model_json_schema()
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        schema["$id"] = f"{SCHEMA_BASE}/{payload.event_type}.envelope.json"
        schema["title"] = payload.__name__
        schema["description"] = (payload.__doc__ or "").strip()
        schema["x-kafka-topic"] = payload.topic
        schema["x-kafka-key"] = f"data.{payload.key_field}"
        schema["properties"]["type"] = {"const": payload.event_type, "type": "string"}
        out[f"{payload.event_type}.json"] = schema
    return out


def render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, schema in event_schemas().items():
        path = directory / name
        path.write_text(render(schema), encoding="utf-8")
        written.append(path)
    return written


if __name__ == "__main__":
    for p in write(Path(sys.argv[1] if len(sys.argv) > 1 else "contracts/schemas")):
        print(p)
