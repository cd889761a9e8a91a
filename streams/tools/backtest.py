"""``leadstream backtest``: replay history through candidate models and measure them against what
sales did.

Each model replays the same events with the embedded engine (the file is read once; each model
scores it from offset 0, exactly as ``leadstream replay`` does). Sales outcomes (``sales_outcome``
events: accepted, rejected, closed won or lost) are joined to each model's MQLs by contact:

- MQL->SQL: MQL contacts that sales accepted (or won) after their MQL;
- MQL->won: MQL contacts won after their MQL;
- recall of won deals: won contacts that were handed off before the win;
- lead time: median days from MQL to won;
- volume: MQLs per ISO week, and buying groups.

A threshold sweep replays each model again at other engagement bars: volume against MQL->SQL,
the compression curve (a lower bar buys volume with conversion).
"""

from __future__ import annotations

import asyncio
import json
import re
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from leadstream.config.model import ScoringModel
from leadstream.config.settings import Settings
from leadstream.engine.input.decode import decode_event
from leadstream.engine.records import SourceRecord
from leadstream.errors import InvalidEvent
from leadstream.tools.replay import file_records, replay_records

__all__ = [
    "ACCEPTED",
    "EVENT_TIME",
    "DecodeOnce",
    "Outcomes",
    "backtest_command",
    "compression_png",
    "default_bars",
    "format_report",
    "measure",
    "read_outcomes",
    "run_backtest",
    "topic_records",
    "with_bar",
]

ACCEPTED = {"accepted", "opportunity_created", "closed_won"}


@dataclass(frozen=True, slots=True)
class Outcomes:
    """Per contact, the earliest time sales accepted it and the earliest time it was won."""

    accepted: dict[str, float] = field(default_factory=dict)
    won: dict[str, float] = field(default_factory=dict)


def read_outcomes(lines: Sequence[bytes]) -> Outcomes:
    """``sales_outcome`` events among JSON lines (other lines are ignored)."""
    outcomes = Outcomes()
    for line in lines:
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if not isinstance(event, dict) or event.get("type") != "sales_outcome":
            continue
        contact, result = event.get("contact_id"), event.get("outcome")
        at = _epoch(event.get("occurred_at"))
        if not contact or at is None:
            continue
        if result in ACCEPTED:
            outcomes.accepted[contact] = min(at, outcomes.accepted.get(contact, at))
        if result == "closed_won":
            outcomes.won[contact] = min(at, outcomes.won.get(contact, at))
    return outcomes


def measure(handoffs: list[dict[str, Any]], outcomes: Outcomes) -> dict[str, Any]:
    """One model's figures from its handoffs and the outcomes."""
    first_mql: dict[str, float] = {}
    for handoff in handoffs:
        if handoff.get("kind") == "mql":
            at = _epoch(handoff["qualified_at"])
            if at is not None:
                first_mql[handoff["contact_id"]] = min(at, first_mql.get(handoff["contact_id"], at))
    mqls = len(first_mql)
    sql = sum(1 for c, at in first_mql.items() if outcomes.accepted.get(c, -1.0) >= at)
    won_after = {c: outcomes.won[c] - at for c, at in first_mql.items() if outcomes.won.get(c, -1.0) >= at}
    weeks: dict[str, int] = {}
    for at in first_mql.values():
        year, week, _ = datetime.fromtimestamp(at, tz=UTC).isocalendar()
        label = f"{year}-W{week:02d}"
        weeks[label] = weeks.get(label, 0) + 1
    return {
        "mqls": mqls,
        "buying_groups": sum(1 for h in handoffs if h.get("kind") == "buying_group"),
        "mql_to_sql": round(sql / mqls, 4) if mqls else None,
        "mql_to_won": round(len(won_after) / mqls, 4) if mqls else None,
        "won": len(outcomes.won),
        "won_recall": round(len(won_after) / len(outcomes.won), 4) if outcomes.won else None,
        "median_days_mql_to_won": round(statistics.median(won_after.values()) / 86_400, 1)
        if won_after
        else None,
        "mqls_by_week": dict(sorted(weeks.items())),
    }


def with_bar(model: ScoringModel, bar: float) -> ScoringModel:
    """The model with another engagement bar (its re-arm band kept below it)."""
    thresholds = model.thresholds
    rearm = thresholds.rearm.model_copy(
        update={"engagement_below": min(thresholds.rearm.engagement_below, bar - 1)}
    )
    return model.model_copy(
        update={"thresholds": thresholds.model_copy(update={"engagement": bar, "rearm": rearm})}
    )


class DecodeOnce:
    """Decodes each record once for every model of a backtest (events are immutable); a model
    with another event policy (size or time bounds) gets decodes of its own. ``policy`` is what
    the pipeline hands its decoder: the policy's limits, equal when theirs are."""

    def __init__(self) -> None:
        self._memo: dict[tuple[Any, str, int, int], Any] = {}

    def __call__(self, record: SourceRecord, policy: Any) -> Any:
        key = (policy, record.topic, record.partition, record.offset)
        found = self._memo.get(key)
        if found is None:
            try:
                found = decode_event(record, policy)
            except InvalidEvent as exc:
                found = exc
            self._memo[key] = found
        if isinstance(found, InvalidEvent):
            raise found
        return found


async def _handoffs(
    records: list[SourceRecord], settings: Settings, model: ScoringModel, decode: DecodeOnce | None = None
) -> list[dict[str, Any]]:
    summary = await replay_records(iter(records), settings, model, decode=decode)
    handoffs: list[dict[str, Any]] = summary["handoff_records"]
    return handoffs


def default_bars(model: ScoringModel) -> list[float]:
    bar = model.thresholds.engagement
    return [b for b in (bar - 20, bar - 10, bar + 10, bar + 20) if b > 0]


def run_backtest(
    records: list[SourceRecord],
    models: Sequence[tuple[str, ScoringModel]],
    outcomes: Outcomes,
    settings: Settings,
    bars: Sequence[float] | None = None,
    progress: Callable[[str], None] = lambda _line: None,
) -> dict[str, Any]:
    """Every model's figures, and per model the sweep over ``bars`` (None: around its own bar)."""
    report: dict[str, Any] = {"events": len(records), "models": {}}
    decode = DecodeOnce()
    for name, model in models:
        progress(f"{name}: replaying {len(records)} events (model {model.version})")
        figures = measure(asyncio.run(_handoffs(records, settings, model, decode)), outcomes)
        figures["version"] = model.version
        figures["engagement_bar"] = model.thresholds.engagement
        sweep = []
        for bar in default_bars(model) if bars is None else bars:
            progress(f"{name}: sweep, engagement bar {bar:g}")
            swept = measure(asyncio.run(_handoffs(records, settings, with_bar(model, bar), decode)), outcomes)
            sweep.append({"engagement_bar": bar, "mqls": swept["mqls"], "mql_to_sql": swept["mql_to_sql"]})
        figures["sweep"] = sweep
        report["models"][name] = figures
    return report


def format_report(report: dict[str, Any]) -> str:
    lines = [f"{report['events']} events"]
    head = (
        "| model | version | bar | MQLs | buying groups | MQL->SQL | MQL->won | won recall "
        "| median days MQL->won |"
    )
    lines += ["", head, "|" + "---|" * 9]
    for name, m in report["models"].items():
        lines.append(
            f"| {name} | {m['version']} | {m['engagement_bar']:g} | {m['mqls']} | {m['buying_groups']} | "
            f"{_pct(m['mql_to_sql'])} | {_pct(m['mql_to_won'])} | {_pct(m['won_recall'])} | "
            f"{m['median_days_mql_to_won'] if m['median_days_mql_to_won'] is not None else '-'} |"
        )
    for name, m in report["models"].items():
        if m["sweep"]:
            lines += ["", f"threshold sweep, {name}: engagement bar -> MQLs, MQL->SQL"]
            lines += [
                f"  {s['engagement_bar']:>5g}  {s['mqls']:>6}  {_pct(s['mql_to_sql'])}" for s in m["sweep"]
            ]
    for name, m in report["models"].items():
        weeks = ", ".join(f"{w} {n}" for w, n in m["mqls_by_week"].items())
        lines += ["", f"MQLs by week, {name}: {weeks or 'none'}"]
    return "\n".join(lines)


def topic_records(
    settings: Settings, topics: Sequence[str], progress: Callable[[str], None]
) -> list[SourceRecord]:
    """Every record of ``topics`` from offset 0, merged in event-time order (a backtest is the
    oracle's view: each account decides as if its members' events had been read in the order
    they happened, whatever the topics' interleaving)."""
    from leadstream.kafka.confluent_loop import source_record
    from leadstream.kafka.topic_io import TopicTail

    out: list[tuple[float, SourceRecord]] = []
    for topic in topics:
        tail = TopicTail(settings, topic, from_beginning=True)
        try:
            while True:
                batch = list(tail.poll(time.monotonic() + 2.0))
                if not batch:
                    break
                for message in batch:
                    record = source_record(message)
                    out.append((_event_time(record), record))
        finally:
            tail.close()
        progress(f"read {topic}: {len(out)} records so far")
    out.sort(key=lambda pair: (pair[0], pair[1].topic, pair[1].partition, pair[1].offset))
    return [record for _stamp, record in out]


EVENT_TIME = re.compile(rb'"(?:occurred_at|updated_at)"\s*:\s*"([^"]{10,40})"')


def _event_time(record: SourceRecord) -> float:
    """The record's event time, read without decoding it; else the time it reached Kafka."""
    found = EVENT_TIME.search(record.value or b"")
    if found is not None:
        try:
            moment = datetime.fromisoformat(found.group(1).decode().replace("Z", "+00:00"))
            if moment.tzinfo is not None:
                return moment.timestamp()
        except ValueError:
            pass
    return (record.timestamp_ms or 0) / 1000.0


def compression_png(report: dict[str, Any], path: Path) -> None:
    """Volume against MQL->SQL per engagement bar, one line per model: the compression curve."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 4.5))
    for name, m in report["models"].items():
        points = sorted(
            [
                (s["mqls"], s["mql_to_sql"], s["engagement_bar"])
                for s in m["sweep"]
                if s["mql_to_sql"] is not None
            ]
            + ([(m["mqls"], m["mql_to_sql"], m["engagement_bar"])] if m["mql_to_sql"] is not None else [])
        )
        if not points:
            continue
        axis.plot([p[0] for p in points], [p[1] * 100 for p in points], marker="o", label=name)
        for volume, rate, bar in points:
            axis.annotate(
                f"{bar:g}", (volume, rate * 100), textcoords="offset points", xytext=(4, 4), fontsize=8
            )
    axis.axhspan(10, 40, color="green", alpha=0.08, label="healthy MQL->SQL (10-40%)")
    axis.set_xlabel("MQLs (volume)")
    axis.set_ylabel("MQL->SQL (%)")
    axis.set_title("Threshold sweep: volume against conversion (labels: engagement bar)")
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def backtest_command(
    events: Path | None,
    model_paths: Sequence[Path],
    outcomes_path: Path | None,
    bars: Sequence[float] | None,
    settings: Settings,
    as_json: bool,
    out: IO[str] | None = None,
    png: Path | None = None,
) -> int:
    from leadstream.config.loader import load_model
    from leadstream.errors import ModelFileError

    def say(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    for path in [*([events] if events else []), *model_paths, *([outcomes_path] if outcomes_path else [])]:
        if not path.is_file():
            print(f"leadstream backtest: no such file: {path}", file=sys.stderr)
            return 2
    if png is not None and not png.parent.is_dir():
        print(f"leadstream backtest: --png: no such directory: {png.parent}", file=sys.stderr)
        return 2
    try:
        models = [(path.stem, load_model(path)) for path in model_paths] or [("default", load_model())]
    except ModelFileError as exc:
        print(f"leadstream backtest: {exc}", file=sys.stderr)
        return 2
    if events is not None:
        records = list(file_records(events, settings.topics.accounts))
    else:  # --from-topics: the input topics (and the feedback topic's outcomes) from offset 0
        from leadstream.kafka.clients import require_kafka

        require_kafka(settings)
        records = topic_records(settings, settings.topics.inputs(), say)
    # Outcomes may sit among the events (the feedback topic's records) or in a file of their own.
    outcome_lines = (
        outcomes_path.read_bytes().splitlines() if outcomes_path else [r.value or b"" for r in records]
    )
    outcomes = read_outcomes(outcome_lines)
    if not outcomes.accepted and not outcomes.won:
        print(
            "leadstream backtest: no sales outcomes found: conversion figures will be empty "
            "(give --outcomes FILE with sales_outcome events, e.g. from "
            "`leadstream generate --outcomes-out`)",
            file=sys.stderr,
        )
    report = run_backtest(records, models, outcomes, settings, bars, say)
    print(json.dumps(report, indent=2) if as_json else format_report(report), file=out or sys.stdout)
    if png is not None:
        try:
            compression_png(report, png)
        except ImportError:
            print("leadstream backtest: --png needs matplotlib (pip install matplotlib)", file=sys.stderr)
            return 2
        say(f"compression curve written to {png}")
    return 0


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _epoch(value: Any) -> float | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed.timestamp() if parsed.tzinfo else None
