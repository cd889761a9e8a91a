"""``leadstream replay FILE``: the engine over a file of events, in memory, no Kafka or Redis."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from config.model import ScoringModel
from config.settings import Settings
from streams.bootstrap import build_embedded
from streams.records import SourceRecord

BATCH = 1000


def file_records(path: Path) -> Iterator[SourceRecord]:
    """One record per line; the 'topic' is the file, the offset is the line number."""
    with path.open("rb") as handle:
        for offset, line in enumerate(handle):
            line = line.strip()
            if line:
                yield SourceRecord(topic=f"file:{path.name}", partition=0, offset=offset, value=line)


async def replay_records(
    records: Iterator[SourceRecord],
    settings: Settings,
    model: ScoringModel,
    on_handoff: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    pipeline, sink, store = build_embedded(settings, model)
    if on_handoff is not None:
        pipeline.handoff_observers.append(on_handoff)
    batch: list[SourceRecord] = []
    for record in records:
        batch.append(record)
        if len(batch) >= BATCH:
            await pipeline.process(batch)
            batch = []
    if batch:
        await pipeline.process(batch)
    counters = pipeline.counters
    contacts = len(store.contact_ids())
    mql_contacts = len(
        {json.loads(r.value or b"{}")["contact_id"] for r in sink.on_topic(settings.topics.handoffs)}
    )
    return {
        "events": counters.records,
        "applied": counters.applied,
        "duplicates": counters.duplicates,
        "dead_letters": counters.dead_letters,
        "contacts": contacts,
        "handoffs": counters.handoffs,
        "mql_contacts": mql_contacts,
        "mql_rate": round(mql_contacts / contacts, 4) if contacts else 0.0,
        "top_rules": sorted(counters.rules.items(), key=lambda kv: -kv[1])[:5],
        "handoff_records": [json.loads(r.value or b"{}") for r in sink.on_topic(settings.topics.handoffs)],
        "dead_letter_records": sink.on_topic(settings.topics.dead_letters),
    }


def run_replay(
    path: Path,
    settings: Settings,
    model: ScoringModel,
    quiet: bool,
    handoffs_out: Path | None = None,
    out: IO[str] = sys.stdout,
) -> int:
    if not path.is_file():
        print(f"leadstream replay: no such file: {path}", file=sys.stderr)
        return 2

    def show(handoff: dict[str, Any]) -> None:
        if not quiet:
            print(format_handoff(handoff), file=out)

    summary = asyncio.run(replay_records(file_records(path), settings, model, show))
    if handoffs_out is not None:
        with handoffs_out.open("w") as handle:
            for handoff in summary["handoff_records"]:
                handle.write(json.dumps(handoff, separators=(",", ":")) + "\n")
    print(format_summary(summary), file=out)
    return 0


def format_handoff(h: dict[str, Any]) -> str:
    top = ", ".join(f"{s['rule']} {s['value']:.0f}" for s in h["engagement"]["signals"][:3])
    return (
        f"MQL  {h['contact_id']:<16} {h['qualified_at'][:16]}  fit {h['fit']['score']:.0f}"
        f"  engagement {h['engagement']['score']:.0f}  ({top})  id {h['handoff_id'][:8]}"
    )


def format_summary(summary: dict[str, Any]) -> str:
    rules = ", ".join(f"{name} x{count}" for name, count in summary["top_rules"])
    return (
        f"summary: {summary['events']} events, {summary['dead_letters']} dead letters, "
        f"{summary['duplicates']} duplicates skipped, {summary['contacts']} contacts, "
        f"{summary['handoffs']} MQL handoffs ({summary['mql_rate']:.1%} of contacts); top rules: {rules}"
    )
