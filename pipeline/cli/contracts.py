"""`salespulse schemas export`: the event contracts as JSON Schema."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from pipeline.infra.settings import Settings


def cmd_schemas(settings: Settings, args: argparse.Namespace) -> int:
    from schemas.events import json_schemas

    out = Path(args.dir)
    out.mkdir(parents=True, exist_ok=True)
    for name, schema in json_schemas().items():
        (out / f"{name}.schema.json").write_text(json.dumps(schema, ensure_ascii=False, indent=2) + "\n")
    print(f"wrote {len(json_schemas())} JSON Schemas to {out}")
    return 0
