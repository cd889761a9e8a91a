"""The floor: the least CPU scoring an event can take in plain CPython, on the same events.

The minimal loop does what any scorer must: parse the line, find the contact, drop a repeated
event id, match the model's precompiled rules, update a forward-decay sum per rule, evaluate fit
(only when traits change), and check both bars. It keeps no journal, no outbox, no accounts, no
context for the handoff: it is a floor, not an engine. The engine runs the same lines through the
embedded pipeline (decode, stages, in-memory store), and both are timed in CPU seconds, repeated,
median, so the ratio holds on a shared, noisy machine. The engine is timed as it runs (compiled
with mypyc, see setup.py) and once more as pure Python, in a child process with
LEADSTREAM_PURE_PYTHON=1 (the mode is chosen when leadstream is imported).

    .venv/bin/python -m bench.floor --contacts 20000       # engine/floor on ~125k generated events
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from leadstream.bootstrap import build_embedded
from leadstream.config.loader import load_model
from leadstream.config.model import ScoringModel
from leadstream.config.settings import Settings
from leadstream.engine.records import SourceRecord
from leadstream.native import PURE_ENV, mode
from leadstream.scoring.signals import CompiledModel, compile_model
from leadstream.tools.generator import JourneyGenerator, default_start
from leadstream.tools.replay import BATCH

__all__ = ["FloorContact", "compare", "engine_cpu", "floor_cpu", "main", "pure_engine_cpu", "score_floor"]


@dataclass(slots=True)
class FloorContact:
    seen: set[str] = field(default_factory=set)
    sums: dict[str, float] = field(default_factory=dict)  # rule -> sum p * e^(lam (t - landmark))
    landmark: float = 0.0
    fit: float = 0.0
    qualified: bool = False


def _property(event: dict[str, Any]) -> dict[str, str]:
    kind = event["type"]
    if kind == "page_view":
        url = event["url"]
        path = "/" + url.split("://", 1)[-1].split("/", 1)[-1].split("?", 1)[0].split("#", 1)[0]
        return {"path": path.lower()}
    if kind == "form_submission":
        return {"form_type": event["form_type"], "form_id": event["form_id"].lower()}
    if kind in ("trial", "webinar"):
        return {"action": event["action"]}
    return {}


def _fit(compiled: CompiledModel, traits: dict[str, Any]) -> float:
    score = 0.0
    for rule in compiled.fit_rules:
        value = traits.get(rule.attribute)
        if value is None:
            continue
        if rule.accepted is not None:
            score += rule.points if str(value).lower() in rule.accepted else 0.0
        elif isinstance(value, int | float) and rule.low <= value <= rule.high:
            score += rule.points
    return score


def score_floor(lines: Sequence[bytes], model: ScoringModel) -> int:
    """The minimal scoring loop over ``lines``; returns how many contacts crossed both bars."""
    compiled = compile_model(model)
    rules = {
        kind: [(r.rule.name, r.rule.points, r.lam, r.patterns) for r in found]
        for kind, found in compiled.rules_by_type.items()
    }
    fit_bar, engagement_bar = model.thresholds.fit, model.thresholds.engagement
    contacts: dict[str, FloorContact] = {}
    crossed = 0
    for line in lines:
        event = orjson.loads(line)
        kind = event["type"]
        if kind == "account":
            continue
        profile = event.get("contact_id") or event.get("email") or event.get("anonymous_id")
        contact = contacts.get(profile)
        if contact is None:
            contact = contacts[profile] = FloorContact()
        if event["event_id"] in contact.seen:
            continue
        contact.seen.add(event["event_id"])
        at = datetime.fromisoformat(event["occurred_at"]).timestamp()
        if not contact.landmark:
            contact.landmark = at
        if kind == "identify":
            contact.fit = _fit(compiled, event.get("traits") or {})
        props = _property(event)
        engagement = 0.0
        for name, points, lam, patterns in rules.get(kind, ()):
            if all(p in props and rx.match(props[p]) for p, rx, _answers in patterns):
                contact.sums[name] = contact.sums.get(name, 0.0) + points * math.exp(
                    lam * (at - contact.landmark)
                )
        for name, total in contact.sums.items():
            lam = compiled.rules_by_name[name].lam
            engagement += total * math.exp(-lam * (at - contact.landmark))
        qualified = contact.fit >= fit_bar and engagement >= engagement_bar
        if qualified and not contact.qualified:
            crossed += 1
        contact.qualified = qualified
    return crossed


def floor_cpu(lines: Sequence[bytes], model: ScoringModel) -> float:
    started = time.process_time()
    score_floor(lines, model)
    return time.process_time() - started


def engine_cpu(lines: Sequence[bytes], model: ScoringModel) -> float:
    """CPU seconds of the embedded engine (the replay pipeline, in-memory store) on ``lines``."""
    settings = Settings()
    pipeline, _sink, _store = build_embedded(settings, model)
    records = [
        SourceRecord(settings.topics.accounts if line.find(b'"type":"account"') != -1 else "file", 0, i, line)
        for i, line in enumerate(lines)
    ]

    async def run() -> float:
        started = time.process_time()
        for at in range(0, len(records), BATCH):
            await pipeline.process(records[at : at + BATCH])
        await pipeline.release_accounts()
        return time.process_time() - started

    return asyncio.run(run())


def _median_of(repeats: int, measure: Callable[[], float]) -> float:
    return statistics.median(measure() for _ in range(repeats))


def pure_engine_cpu(lines: Sequence[bytes], repeats: int) -> float:
    """The median CPU seconds of the engine on ``lines`` as pure Python (a child process)."""
    with tempfile.NamedTemporaryFile(suffix=".jsonl") as file:
        file.write(b"\n".join(lines))
        file.flush()
        done = subprocess.run(
            [sys.executable, "-m", "bench.floor", "--engine-only", file.name, "--repeats", str(repeats)],
            env={**os.environ, PURE_ENV: "1"},
            capture_output=True,
            text=True,
            check=True,
        )
    return float(done.stdout.split()[-1])


def compare(
    lines: Sequence[bytes], model: ScoringModel, repeats: int = 3, pure: bool = True
) -> dict[str, float]:
    """CPU µs per event of the floor and of the engine on the same lines, and their ratio; with
    ``pure``, the engine as pure Python too (when it runs compiled here)."""
    floor = _median_of(repeats, lambda: floor_cpu(lines, model))
    engine = _median_of(repeats, lambda: engine_cpu(lines, model))
    result = {
        "floor_cpu_us_per_event": 1e6 * floor / len(lines),
        "engine_cpu_us_per_event": 1e6 * engine / len(lines),
        "engine_over_floor": engine / floor,
    }
    if pure and mode().startswith("compiled"):
        python = pure_engine_cpu(lines, repeats)
        result["engine_pure_python_cpu_us_per_event"] = 1e6 * python / len(lines)
        result["engine_pure_python_over_floor"] = python / floor
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.floor", description=__doc__.split("\n\n")[0])
    parser.add_argument("--contacts", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument(
        "--engine-only", metavar="FILE", help="print only the engine's median CPU seconds on FILE"
    )
    args = parser.parse_args(argv)
    if args.engine_only:
        with open(args.engine_only, "rb") as file:
            given = file.read().split(b"\n")
        print(_median_of(args.repeats, lambda: engine_cpu(given, load_model())))
        return 0
    print(f"[floor] generating journeys for {args.contacts:,} contacts", file=sys.stderr)
    events = JourneyGenerator(args.seed, args.contacts, start=default_start()).events()
    lines = [orjson.dumps(e) for e in events]
    print(f"[floor] {len(lines):,} events; floor and engine, {args.repeats} runs each", file=sys.stderr)
    result = compare(lines, load_model(), args.repeats)
    print(f"events                     {len(lines):>12,}")
    print(f"floor  CPU µs/event        {result['floor_cpu_us_per_event']:>12.1f}")
    print(f"engine CPU µs/event        {result['engine_cpu_us_per_event']:>12.1f}   ({mode()})")
    print(f"engine / floor             {result['engine_over_floor']:>12.1f}x")
    if "engine_pure_python_over_floor" in result:
        print(f"pure Python engine µs/event {result['engine_pure_python_cpu_us_per_event']:>11.1f}")
        print(f"pure Python engine / floor {result['engine_pure_python_over_floor']:>12.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
