"""Export the JSON Schemas of the envelope and every event: python -m petportal_schemas.export DIR"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from .envelope import Envelope, registered_events


def schemas() -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {"Envelope.json": Envelope.model_json_schema()}
    for cls in registered_events():
        schema = cls.model_json_schema()
        schema["x-event-type"] = cls.EVENT_TYPE
        schema["x-event-version"] = cls.VERSION
        schema["x-topic"] = cls.TOPIC
        out[f"{cls.EVENT_TYPE}.v{cls.VERSION}.json"] = schema
    return out


def render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def main(argv: list[str]) -> int:
    target = Path(argv[1]) if len(argv) > 1 else Path(__file__).resolve().parent.parent / "jsonschema"
    target.mkdir(parents=True, exist_ok=True)
    for name, schema in schemas().items():
        (target / name).write_text(render(schema))
    print(f"wrote {len(schemas())} schemas to {target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
