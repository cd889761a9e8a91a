"""Write the JSON Schema files under schemas/json/ from the pydantic models.

python -m schemas.export          # rewrite the files
python -m schemas.export --check  # exit 1 if a checked-in file differs from the models
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel, TypeAdapter

from leadstream.schemas.assignment import Assignment
from leadstream.schemas.dead_letter import DeadLetterHeaders
from leadstream.schemas.erasure import Erasure
from leadstream.schemas.events import AccountFirmographics, Event
from leadstream.schemas.handoff import BuyingGroupHandoff, MqlHandoff
from leadstream.schemas.lifecycle import LifecycleTransition, SlaBreach

__all__ = ["OUT", "documents", "main", "render"]

OUT = Path(__file__).resolve().parent / "json"


def documents() -> dict[str, dict[str, Any]]:
    models: dict[str, type[BaseModel]] = {
        "account.schema.json": AccountFirmographics,
        "mql_handoff.schema.json": MqlHandoff,
        "buying_group_handoff.schema.json": BuyingGroupHandoff,
        "lifecycle_transition.schema.json": LifecycleTransition,
        "sla_breach.schema.json": SlaBreach,
        "assignment.schema.json": Assignment,
        "dead_letter_headers.schema.json": DeadLetterHeaders,
        "erasure.schema.json": Erasure,
    }
    docs = {name: model.model_json_schema(by_alias=True) for name, model in models.items()}
    docs["event.schema.json"] = TypeAdapter(Event).json_schema()
    for name, doc in docs.items():
        doc["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        doc["$id"] = f"https://leadstream.dev/schemas/{name}"
    return docs


def render(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2, sort_keys=True) + "\n"


def main(argv: list[str]) -> int:
    check = "--check" in argv
    stale = []
    OUT.mkdir(exist_ok=True)
    for name, doc in documents().items():
        path = OUT / name
        text = render(doc)
        if check:
            if not path.exists() or path.read_text() != text:
                stale.append(name)
        else:
            path.write_text(text)
    if stale:
        print(
            f"JSON Schemas out of date: {', '.join(stale)}; run: python -m schemas.export",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
