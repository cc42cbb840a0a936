"""JSON Schemas of every event, written to ``contracts/schemas/`` for outside subscribers.

* ``envelope/<type>.json`` — the whole CloudEvent as it travels on Kafka;
* ``data/<type>.json`` — its ``data`` alone: the document each event's ``dataschema`` URI names.

They are the reader's contract: every object allows additional properties (a newer kyso adds optional
fields and extension attributes within a version), and ``$comment`` says so, with the duplicate rule.

The URIs mirror the directory: ``https://schemas.kyso.vn/events/<path>`` ↔ ``contracts/schemas/<path>``.

    python -m kyso_contracts.schemas <dir>     # (re)write the files
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from .envelope import DELIVERED_MORE_THAN_ONCE, READERS_IGNORE_UNKNOWN, SCHEMA_BASE
from .events import ALL_EVENTS
from .registry import envelope_model


def _relative(uri: str) -> str:
    return uri.removeprefix(SCHEMA_BASE + "/")


def event_schemas() -> dict[str, dict[str, Any]]:
    """Relative file path → schema, for every event's envelope and data."""
    out: dict[str, dict[str, Any]] = {}
    for payload in ALL_EVENTS:
        doc = (payload.__doc__ or "").strip()
        data = payload.model_json_schema()
        data["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        data["$id"] = payload.dataschema()
        data["description"] = doc
        data["$comment"] = READERS_IGNORE_UNKNOWN
        out[_relative(payload.dataschema())] = data

        envelope = envelope_model(payload).model_json_schema()
        envelope["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        envelope["$id"] = payload.envelope_schema()
        envelope["title"] = payload.__name__
        envelope["description"] = doc
        envelope["$comment"] = f"{READERS_IGNORE_UNKNOWN} {DELIVERED_MORE_THAN_ONCE}"
        envelope["x-kafka-topic"] = payload.topic
        envelope["x-kafka-key"] = f"data.{payload.key_field}"
        envelope["properties"]["type"] = {"const": payload.event_type, "type": "string"}
        envelope["properties"]["dataschema"] = {"const": payload.dataschema(), "type": "string"}
        out[_relative(payload.envelope_schema())] = envelope
    return out


def render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, schema in event_schemas().items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render(schema), encoding="utf-8")
        written.append(path)
    return written


if __name__ == "__main__":
    for p in write(Path(sys.argv[1] if len(sys.argv) > 1 else "contracts/schemas")):
        print(p)
