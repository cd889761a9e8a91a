"""What the live page shows, folded from the handoff and lifecycle topics: pure, no I/O.

Records arrive at least once: handoffs are deduplicated by ``handoff_id``, lifecycle events by
their ids (the report does the same), so a redelivered record changes nothing on the page.
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

from leadstream.tools.report import conversion

__all__ = ["FEED_SIZE", "LiveView", "histogram"]

FEED_SIZE = 200  # handoffs kept for the feed; the page shows the newest
_REPORT_FIELDS = ("kind", "handoff_id", "contact_id", "model_version", "qualified_at")
_LIFECYCLE_FIELDS = (
    "kind",
    "transition_id",
    "breach_id",
    "contact_id",
    "to_stage",
    "reason",
    "at",
    "handoff_id",
    "step",
    "due_at",
)


@dataclass(slots=True)
class LiveView:
    seq: int = 0  # one per new handoff: the page asks for those after the last it saw
    feed: deque[tuple[int, dict[str, Any]]] = field(default_factory=lambda: deque(maxlen=FEED_SIZE))
    seen: set[str] = field(default_factory=set)
    mqls_by_day: Counter[str] = field(default_factory=Counter)
    mqls: list[dict[str, Any]] = field(default_factory=list)  # only what the report reads
    lifecycle: dict[str, dict[str, Any]] = field(default_factory=dict)
    groups: dict[str, dict[str, Any]] = field(default_factory=dict)  # domain -> latest group handoff
    # The conversion report, recomputed only when a record came in since (every page polls).
    _report: tuple[tuple[int, int], dict[str, Any]] | None = None

    def add_handoff(self, handoff: dict[str, Any]) -> bool:
        handoff_id = handoff.get("handoff_id")
        if not isinstance(handoff_id, str) or handoff_id in self.seen:
            return False
        self.seen.add(handoff_id)
        self.seq += 1
        self.feed.append((self.seq, _feed_item(handoff)))
        if handoff.get("kind") == "mql":
            self.mqls_by_day[str(handoff.get("qualified_at", ""))[:10]] += 1
            self.mqls.append({k: handoff.get(k) for k in _REPORT_FIELDS})
        elif handoff.get("kind") == "buying_group":
            domain = str(handoff.get("domain"))
            held = self.groups.get(domain)
            if held is None or str(handoff.get("qualified_at")) >= held["qualified_at"]:
                self.groups[domain] = {
                    "domain": domain,
                    "qualified_at": str(handoff.get("qualified_at")),
                    "reason": handoff.get("reason"),
                    "engaged_contacts": handoff.get("engaged_contacts"),
                    "roles_covered": list(handoff.get("roles_covered") or []),
                    "roles_missing": list(handoff.get("roles_missing") or []),
                }
        return True

    def add_lifecycle(self, event: dict[str, Any]) -> None:
        event_id = event.get("transition_id") or event.get("breach_id")
        if isinstance(event_id, str):
            self.lifecycle[event_id] = {k: event.get(k) for k in _LIFECYCLE_FIELDS if k in event}

    def snapshot(self, after: int = 0, feed_limit: int = 50, days: int = 30) -> dict[str, Any]:
        """The page's data: handoffs newer than ``after`` (newest last), MQLs per day, conversion
        by model version, buying groups still missing roles."""
        fresh = [item for seq, item in self.feed if seq > after][-feed_limit:]
        size = (len(self.mqls), len(self.lifecycle))
        if self._report is None or self._report[0] != size:
            self._report = (size, conversion(self.mqls, list(self.lifecycle.values()))["by_version"])
        report = self._report[1]
        missing = [g for g in self.groups.values() if g["roles_missing"]]
        missing.sort(key=lambda g: g["qualified_at"], reverse=True)
        return {
            "seq": self.seq,
            "feed": fresh,
            "mqls_per_day": sorted(self.mqls_by_day.items())[-days:],
            "conversion": report,
            "groups_missing_roles": missing[:50],
        }


def _feed_item(handoff: dict[str, Any]) -> dict[str, Any]:
    """The fields the feed shows; the page sets them as text, whatever they hold."""
    kind = handoff.get("kind")
    if kind == "buying_group":
        return {
            "kind": kind,
            "handoff_id": handoff.get("handoff_id"),
            "who": handoff.get("domain"),
            "qualified_at": handoff.get("qualified_at"),
            "model_version": handoff.get("model_version"),
            "detail": f"{handoff.get('reason')}: {handoff.get('engaged_contacts')} engaged; "
            f"missing {', '.join(handoff.get('roles_missing') or []) or 'none'}",
        }
    signals = (handoff.get("engagement") or {}).get("signals") or []
    return {
        "kind": kind,
        "handoff_id": handoff.get("handoff_id"),
        "who": handoff.get("email_display") or handoff.get("email") or handoff.get("contact_id"),
        "account": handoff.get("account_domain"),
        "qualified_at": handoff.get("qualified_at"),
        "model_version": handoff.get("model_version"),
        "fit": (handoff.get("fit") or {}).get("score"),
        "engagement": (handoff.get("engagement") or {}).get("score"),
        "detail": ", ".join(str(s.get("rule")) for s in signals[:3]),
    }


def histogram(values: list[float], bar: float, width: float = 10.0) -> dict[str, Any]:
    """Counts per ``width``-point bin from 0 up to past the bar and the highest value; values
    below 0 count in the first bin."""
    top = max([bar, *values]) if values else bar
    bins = int(top // width) + 1
    counts = [0] * bins
    for value in values:
        counts[min(bins - 1, max(0, int(value // width)))] += 1
    return {
        "width": width,
        "counts": counts,
        "bar": bar,
        "at_or_above_bar": sum(1 for v in values if v >= bar),
        "total": len(values),
    }
