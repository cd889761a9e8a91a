"""``leadstream calibrate``: learn transparent rule weights from sales outcomes.

The history is replayed through the current model (embedded engine). For every contact, each
engagement rule's decayed contribution at the contact's last event (as a share of the rule's
points: 1.0 is one full occurrence), each fit rule's match and each domain list's match are the
features; whether sales
accepted the contact is the label. A regularised logistic regression (scikit-learn) is fitted on
70% of the contacts (a deterministic split by contact id) and judged on the other 30% against the
current model's own score (fit plus engagement), by ROC AUC and Brier score.

The candidate model keeps the current one's rules and bars' scale: each rule's points are its
coefficient rescaled so that the positive points sum to what they summed to before (engagement
and fit separately). The engagement bar is proposed for a target MQL->SQL or a target volume.
It is written as a new model file with its own version; the live model is never touched.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import yaml

from leadstream.bootstrap import build_embedded
from leadstream.config.model import ScoringModel
from leadstream.config.settings import Settings
from leadstream.engine.eventtime.watermarks import FileOrder
from leadstream.engine.records import SourceRecord
from leadstream.scoring.accounts import account_of
from leadstream.scoring.engagement import engagement
from leadstream.scoring.fit import evaluate_fit
from leadstream.scoring.signals import compile_model
from leadstream.state.keys import account_keys_start, contact_keys_start, record_id
from leadstream.state.port import decode_account, decode_state
from leadstream.tools.backtest import Outcomes, read_outcomes
from leadstream.tools.replay import BATCH, file_records

__all__ = ["Dataset", "calibrate", "calibrate_command", "dataset"]

MIN_CONTACTS, MIN_POSITIVES = 200, 30


@dataclass(frozen=True, slots=True)
class Dataset:
    contacts: list[str]
    names: list[str]  # feature names: "engagement:<rule>" and "fit:<rule>"
    rows: list[list[float]]
    labels: list[int]
    current: list[float]  # the current model's score: fit + engagement (-inf when disqualified)


def _held_out(contact: str) -> bool:
    return hashlib.blake2b(contact.encode(), digest_size=2).digest()[0] < 77  # about 30%


async def dataset(
    records: list[SourceRecord], settings: Settings, model: ScoringModel, outcomes: Outcomes
) -> Dataset:
    order = FileOrder()
    pipeline, _sink, store = build_embedded(settings, model, order)
    for start in range(0, len(records), BATCH):
        await pipeline.process(records[start : start + BATCH])
        await pipeline.release_accounts()
    order.finish()
    await pipeline.release_accounts()
    compiled = compile_model(model)
    prefix = settings.redis_key_prefix
    stored = await store.load(store.keys(contact_keys_start(prefix)))
    accounts = await store.load(store.keys(account_keys_start(prefix)))
    firmographics = {
        record_id(key): decode_account(r.value).firmographics
        for key, r in accounts.items()
        if r.value is not None
    }
    # Domain lists (competitor, student, personal mail) are features too, or their effect would
    # be blamed on what those people do (students sign up for trials); their points stay policy.
    lists = [f"list:{name}" for name in model.domain_lists]
    names = [f"engagement:{r.name}" for r in model.engagement_rules] + [
        f"fit:{r.name}" for r in model.fit_rules
    ]
    names += lists
    points = {f"engagement:{r.name}": r.points for r in model.engagement_rules}
    points.update({f"fit:{r.name}": r.points for r in model.fit_rules})
    points.update(dict.fromkeys(lists, 1.0))
    contacts, rows, labels, current = [], [], [], []
    for key in sorted(stored):
        record = stored[key]
        if record.value is None or record.alias is not None:
            continue
        state = decode_state(record.value)
        if state.contact_id.startswith(("anon:", "email:")):
            continue  # never identified: sales could not have worked it
        total, parts = engagement(compiled, state, state.clock)
        domain = account_of(compiled, state)
        fit = evaluate_fit(compiled, state, firmographics.get(domain) if domain else None)
        values = {f"engagement:{name}": value for name, value in parts.items()}
        for name, value in fit.breakdown:
            values[f"list:{name[7:]}" if name.startswith("domain:") else f"fit:{name}"] = (
                1.0 if name.startswith("domain:") else value
            )
        rows.append([values.get(n, 0.0) / points[n] if points[n] else 0.0 for n in names])
        contacts.append(state.contact_id)
        labels.append(int(state.contact_id in outcomes.accepted))
        current.append(-math.inf if fit.disqualified_by else fit.score + total)
    return Dataset(contacts, names, rows, labels, current)


def _auc(labels: Sequence[int], scores: Sequence[float]) -> float | None:
    from sklearn.metrics import roc_auc_score

    if len(set(labels)) < 2:
        return None
    finite = [s if math.isfinite(s) else -1e9 for s in scores]
    return round(float(roc_auc_score(labels, finite)), 4)


def calibrate(
    data: Dataset,
    model: ScoringModel,
    target_mql_to_sql: float | None = None,
    target_volume: int | None = None,
) -> dict[str, Any]:
    """Fit, evaluate on the held-out contacts, and propose a candidate model (as a dict)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import brier_score_loss

    train = [i for i, c in enumerate(data.contacts) if not _held_out(c)]
    test = [i for i, c in enumerate(data.contacts) if _held_out(c)]
    warnings = []
    positives = sum(data.labels)
    if len(data.contacts) < MIN_CONTACTS or positives < MIN_POSITIVES:
        warnings.append(
            f"only {len(data.contacts)} contacts and {positives} accepted by sales: weights this "
            f"thin are noise (want at least {MIN_CONTACTS} and {MIN_POSITIVES})"
        )
    if len({data.labels[i] for i in train}) < 2:
        raise ValueError("the outcomes hold only one class (all accepted or none): nothing to learn")
    fitted = LogisticRegression(C=1.0, max_iter=2000)
    fitted.fit([data.rows[i] for i in train], [data.labels[i] for i in train])
    coefficients = dict(zip(data.names, (float(c) for c in fitted.coef_[0]), strict=True))
    test_rows = [data.rows[i] for i in test]
    test_labels = [data.labels[i] for i in test]
    learned = [float(p) for p in fitted.predict_proba(test_rows)[:, 1]] if test_rows else []
    candidate, scale = _candidate(model, coefficients)
    bar = _propose_bar(data, candidate, scale, target_mql_to_sql, target_volume)
    if bar is not None:
        candidate["thresholds"]["engagement"] = bar
        rearm = candidate["thresholds"].get("rearm") or {}
        if rearm.get("engagement_below", 0) >= bar:
            rearm["engagement_below"] = round(bar * 0.4, 1)
    return {
        "contacts": len(data.contacts),
        "accepted": positives,
        "held_out": len(test),
        "auc_learned": _auc(test_labels, learned),
        "auc_current": _auc(test_labels, [data.current[i] for i in test]),
        "brier_learned": round(float(brier_score_loss(test_labels, learned)), 4) if test_labels else None,
        "coefficients": {n: round(c, 4) for n, c in coefficients.items()},
        "proposed_engagement_bar": bar,
        "warnings": warnings,
        "candidate": candidate,
    }


def _candidate(
    model: ScoringModel, coefficients: dict[str, float]
) -> tuple[dict[str, Any], dict[str, float]]:
    """The model as a dict with each rule's points from its coefficient, rescaled per axis."""
    raw = model.model_dump(mode="json", exclude_none=True)
    scale: dict[str, float] = {}
    for axis, rules in (("engagement", raw["engagement_rules"]), ("fit", raw["fit_rules"])):
        before = sum(r["points"] for r in rules if r["points"] > 0)
        learned = sum(max(0.0, coefficients[f"{axis}:{r['name']}"]) for r in rules)
        scale[axis] = before / learned if learned > 0 else 1.0
        for rule in rules:
            points = round(coefficients[f"{axis}:{rule['name']}"] * scale[axis], 1)
            if "cap" in rule and rule["points"]:
                # the cap keeps its ratio to the points (how many occurrences count)
                rule["cap"] = round(abs(points) * rule["cap"] / abs(rule["points"]), 1)
            rule["points"] = points
    # A rule the outcomes give (almost) no weight is recorded, never counted.
    weightless = [r for r in raw["engagement_rules"] if abs(r["points"]) < 1.0]
    raw["engagement_rules"] = [r for r in raw["engagement_rules"] if abs(r["points"]) >= 1.0]
    raw.setdefault("nurture_signals", []).extend({"name": r["name"], "when": r["when"]} for r in weightless)
    raw["fit_rules"] = [r for r in raw["fit_rules"] if abs(r["points"]) >= 1.0]
    stamp = datetime.now(UTC).strftime("%Y%m%d")
    raw["version"] = f"{model.version}-calibrated-{stamp}"
    return raw, scale


def _propose_bar(
    data: Dataset,
    candidate: dict[str, Any],
    scale: dict[str, float],
    target_mql_to_sql: float | None,
    target_volume: int | None,
) -> float | None:
    """The engagement bar, in the candidate's points, for the target (on every contact that
    clears the candidate's fit bar)."""
    if target_mql_to_sql is None and target_volume is None:
        return None
    points = dict.fromkeys(data.names, 0.0)
    points.update({f"engagement:{r['name']}": r["points"] for r in candidate["engagement_rules"]})
    points.update({f"fit:{r['name']}": r["points"] for r in candidate["fit_rules"]})
    fit_bar = candidate["thresholds"]["fit"]
    scored = []
    for row, label, current in zip(data.rows, data.labels, data.current, strict=True):
        if not math.isfinite(current):
            continue
        values = dict(zip(data.names, row, strict=True))
        fit = sum(points[n] * v for n, v in values.items() if n.startswith("fit:"))
        if fit < fit_bar:
            continue
        scored.append((sum(points[n] * v for n, v in values.items() if n.startswith("engagement:")), label))
    scored.sort(reverse=True)
    if not scored:
        return None
    if target_volume is not None:
        index = min(len(scored), max(1, target_volume)) - 1
        return round(scored[index][0], 1)
    assert target_mql_to_sql is not None
    best, accepted = None, 0
    for count, (score, label) in enumerate(scored, 1):
        accepted += label
        if count >= 10 and accepted / count >= target_mql_to_sql:
            best = score  # the lowest bar whose MQLs still convert at the target
    # A bar of 0 would hand off every fitting contact: the lowest bar with any intent instead.
    floor = min((score for score, _label in scored if score > 0), default=1.0)
    return round(max(best if best is not None else scored[0][0], floor, 1.0), 1)


def calibrate_command(
    events: Path,
    outcomes_path: Path | None,
    model: ScoringModel,
    out_path: Path,
    target_mql_to_sql: float | None,
    target_volume: int | None,
    settings: Settings,
    progress: Callable[[str], None] = lambda line: print(line, file=sys.stderr, flush=True),
    out: IO[str] | None = None,
) -> int:
    from leadstream.config.loader import parse_model
    from leadstream.errors import ModelFileError

    out = out or sys.stdout
    for path in [events, *([outcomes_path] if outcomes_path else [])]:
        if not path.is_file():
            print(f"leadstream calibrate: no such file: {path}", file=sys.stderr)
            return 2
    lines = events.read_bytes().splitlines()
    outcomes = read_outcomes(outcomes_path.read_bytes().splitlines() if outcomes_path else lines)
    if not outcomes.accepted:
        print("leadstream calibrate: no accepted sales outcomes: nothing to learn from", file=sys.stderr)
        return 2
    records = list(file_records(events, settings.topics.accounts))
    progress(f"replaying {len(records)} events through {model.version} for the features")
    data = asyncio.run(dataset(records, settings, model, outcomes))
    progress(f"fitting on {len(data.contacts)} contacts ({sum(data.labels)} accepted by sales)")
    try:
        result = calibrate(data, model, target_mql_to_sql, target_volume)
    except ValueError as exc:
        print(f"leadstream calibrate: {exc}", file=sys.stderr)
        return 2
    text = (
        f"# Calibrated by `leadstream calibrate` from {events.name} on {datetime.now(UTC):%Y-%m-%d}:\n"
        f"# points from a logistic regression on sales outcomes (held-out AUC {result['auc_learned']}"
        f" vs {result['auc_current']} for {model.version}). Backtest and shadow it before promoting.\n"
        + yaml.safe_dump(result["candidate"], sort_keys=False)
    )
    try:
        parse_model(text, str(out_path))
    except ModelFileError as exc:  # a bug of ours: never write a model validate would refuse
        print(f"leadstream calibrate: the candidate is not a valid model:\n{exc}", file=sys.stderr)
        return 1
    out_path.write_text(text)
    for warning in result["warnings"]:
        print(f"warning: {warning}", file=sys.stderr)
    print(f"held-out ROC AUC: learned {result['auc_learned']}, current {result['auc_current']}", file=out)
    print(f"held-out Brier score (learned): {result['brier_learned']}", file=out)
    print("weights (log-odds for one full occurrence of each rule):", file=out)
    for name, value in sorted(result["coefficients"].items(), key=lambda kv: -kv[1]):
        print(f"  {name:<40} {value:+.3f}", file=out)
    if result["proposed_engagement_bar"] is not None:
        print(f"proposed engagement bar: {result['proposed_engagement_bar']}", file=out)
    print(f"candidate model written to {out_path} (version {result['candidate']['version']})", file=out)
    return 0
