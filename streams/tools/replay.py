"""``leadstream replay FILE``: the engine over a file of events, in memory, no Kafka or Redis."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from leadstream.bootstrap import build_embedded
from leadstream.config.model import ScoringModel
from leadstream.config.settings import Settings
from leadstream.engine.eventtime.watermarks import FileOrder
from leadstream.engine.input.dead_letters import HEADER_PREFIX
from leadstream.engine.records import OutputRecord, SourceRecord
from leadstream.state.keys import contact_keys_start

__all__ = [
    "BATCH",
    "dead_letter_lines",
    "file_records",
    "format_handoff",
    "format_summary",
    "lines_records",
    "replay_records",
    "run_replay",
]

# Records scored per batch. Each batch commits every contact and account it touched once, so a
# larger batch commits a busy one less often: 153 -> 111 µs of CPU an event from 1,000 to 20,000
# (125k generated events). Where contacts are sparse in the file it keeps paying: 250k events of
# 40k contacts, 20,000 -> 50,000, 28.2 -> 23.6 s, peak RSS 676 -> 814 MB (the in-memory state
# holds the rest). The same handoffs at every size (tests/unit/test_arrival_order.py holds them
# to any batching); a batch in flight takes ~10 KB an event.
BATCH = 50_000


def file_records(path: Path, accounts_topic: str) -> Iterator[SourceRecord]:
    """One record per line; the 'topic' is the file, the offset is the line number (from 0). Lines
    with ``"type": "account"`` are firmographics, as if read from the accounts topic."""
    with path.open("rb") as handle:
        yield from lines_records(handle, path.name, accounts_topic)


def lines_records(handle: IO[bytes], name: str, accounts_topic: str) -> Iterator[SourceRecord]:
    """The records of an open stream of lines (a file, or standard input for ``-``)."""
    for offset, line in enumerate(handle):
        line = line.strip()
        if not line:
            continue
        topic = f"file:{name}"
        # find, not `in`: bytes' `in` tries its operand as an int first (a TypeError raised and
        # cleared for every line)
        if line.find(b'"account"') != -1 and _is_account(line):
            topic = accounts_topic
        yield SourceRecord(topic=topic, partition=0, offset=offset, value=line)


def _is_account(line: bytes) -> bool:
    try:
        parsed = json.loads(line)
    except ValueError:
        return False
    return isinstance(parsed, dict) and parsed.get("type") == "account"


async def replay_records(
    records: Iterator[SourceRecord],
    settings: Settings,
    model: ScoringModel,
    on_handoff: Callable[[dict[str, Any]], None] | None = None,
    decode: Callable[[SourceRecord, Any], Any] | None = None,
) -> dict[str, Any]:
    # The file is the stream, read in order: accounts decide as the stream passes each point, and
    # once it ends every point still waiting is applied.
    order = FileOrder()
    pipeline, sink, store = build_embedded(settings, model, order)
    if on_handoff is not None:
        pipeline.handoff_observers.append(on_handoff)
    if decode is not None:
        pipeline.decode = decode
    batch: list[SourceRecord] = []
    for record in records:
        batch.append(record)
        if len(batch) >= BATCH:
            await pipeline.process(batch)
            await pipeline.release_accounts()
            batch = []
    if batch:
        await pipeline.process(batch)
    order.finish()
    await pipeline.release_accounts()
    counters = pipeline.counters
    stored = await store.load(store.keys(contact_keys_start(settings.redis_key_prefix)))
    contacts = sum(1 for r in stored.values() if r.value is not None and r.alias is None)
    handoffs = [json.loads(r.value or b"{}") for r in sink.on_topic(settings.topics.handoffs)]
    mql_contacts = len({h["contact_id"] for h in handoffs if h["kind"] == "mql"})
    return {
        "events": counters.records,
        "applied": counters.applied,
        "duplicates": counters.duplicates,
        "dead_letters": counters.dead_letters,
        "contacts": contacts,
        "handoffs": counters.handoffs,
        "account_handoffs": counters.account_handoffs,
        "links": counters.links,
        "mql_contacts": mql_contacts,
        "mql_rate": round(mql_contacts / contacts, 4) if contacts else 0.0,
        "top_rules": sorted(counters.rules.items(), key=lambda kv: -kv[1])[:5],
        "handoff_records": handoffs,
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
    stdin = str(path) == "-"
    if not stdin and path.is_dir():
        print(
            f"leadstream replay: {path} is a directory; give a file of JSON lines (or - for stdin)",
            file=sys.stderr,
        )
        return 2
    if not stdin and not path.is_file():
        print(f"leadstream replay: no such file: {path}", file=sys.stderr)
        return 2

    def show(handoff: dict[str, Any]) -> None:
        if not quiet:
            print(format_handoff(handoff), file=out)

    records = (
        lines_records(sys.stdin.buffer, "stdin", settings.topics.accounts)
        if stdin
        else file_records(path, settings.topics.accounts)
    )
    summary = asyncio.run(replay_records(records, settings, model, show))
    for line in dead_letter_lines(summary["dead_letter_records"]):
        print(f"leadstream replay: {line}", file=sys.stderr)
    if handoffs_out is not None:
        with handoffs_out.open("w") as handle:
            for handoff in summary["handoff_records"]:
                handle.write(json.dumps(handoff, separators=(",", ":")) + "\n")
    print(format_summary(summary), file=out)
    return 0


def dead_letter_lines(records: list[OutputRecord], shown: int = 20) -> list[str]:
    """One line per dead-lettered input line: its number (from 1) and why; the first ``shown``."""
    lines = []
    for record in records[:shown]:
        headers = {k: v.decode("utf-8", "replace") for k, v in record.headers}
        number = int(headers.get(f"{HEADER_PREFIX}offset", "-1")) + 1
        reason = headers.get(f"{HEADER_PREFIX}exception.class.name", "").removeprefix("InvalidEvent.")
        lines.append(
            f"line {number}: dead letter ({reason}): {headers.get(f'{HEADER_PREFIX}exception.message', '')}"
        )
    if len(records) > shown:
        lines.append(f"... and {len(records) - shown} more dead letters")
    return lines


def format_handoff(h: dict[str, Any]) -> str:
    if h["kind"] == "buying_group":
        people = ", ".join(f"{m['contact_id']} ({m['role'] or '?'})" for m in h["members"] if m["engaged"])
        missing = ", ".join(h["roles_missing"]) or "none"
        return (
            f"ACCOUNT {h['domain']:<24} {h['qualified_at'][:16]}  {h['reason']}: "
            f"{h['engaged_contacts']} engaged [{people}]  roles missing: {missing}  id {h['handoff_id'][:8]}"
        )
    top = ", ".join(f"{s['rule']} {s['value']:.0f}" for s in h["engagement"]["signals"][:3])
    return (
        f"MQL  {h['contact_id']:<16} {h['qualified_at'][:16]}  fit {h['fit']['score']:.0f}"
        f"  engagement {h['engagement']['score']:.0f}  ({top})  id {h['handoff_id'][:8]}"
    )


def format_summary(summary: dict[str, Any]) -> str:
    rules = ", ".join(f"{name} x{count}" for name, count in summary["top_rules"])
    return (
        f"summary: {summary['events']} events, {summary['dead_letters']} dead letters, "
        f"{summary['duplicates']} duplicates skipped, {summary['contacts']} contacts "
        f"({summary['links']} profiles stitched), {summary['handoffs']} MQL handoffs "
        f"({summary['mql_rate']:.1%} of contacts), {summary['account_handoffs']} buying-group handoffs; "
        f"top rules: {rules}"
    )
