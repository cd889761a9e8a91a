"""The conversion report: pure over handoff and lifecycle records."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from leadstream.tools.report import conversion

T = datetime(2026, 3, 2, 9, tzinfo=UTC)


def iso(hours: float) -> str:
    return (T + timedelta(hours=hours)).isoformat().replace("+00:00", "Z")


def mql(n: int, version: str = "v1", hours: float = 0) -> dict:
    return {
        "kind": "mql",
        "handoff_id": f"h{n}",
        "contact_id": f"c{n}",
        "model_version": version,
        "qualified_at": iso(hours),
    }


def moved(n: int, to: str, reason: str, hours: float, handoff: bool = True) -> dict:
    return {
        "kind": "transition",
        "transition_id": f"t{n}-{to}-{hours}",
        "contact_id": f"c{n}",
        "to_stage": to,
        "from_stage": "mql",
        "reason": reason,
        "at": iso(hours),
        "handoff_id": f"h{n}" if handoff else None,
    }


def breach(n: int, due_hours: float) -> dict:
    return {
        "kind": "sla_breached",
        "breach_id": f"b{n}",
        "handoff_id": f"h{n}",
        "contact_id": f"c{n}",
        "step": 0,
        "due_at": iso(due_hours),
        "at": iso(due_hours),
    }


def test_conversion_by_version_with_sla_and_first_touch():
    handoffs = [mql(n) for n in range(40)] + [mql(100, "v2")]
    lifecycle = [moved(n, "sql", "sales accepted", 2) for n in range(4)]  # 10% -> too loose
    lifecycle += [moved(0, "customer", "closed won", 500, handoff=False)]  # credited to c0's MQL
    lifecycle += [moved(n, "recycled", "sales rejected: no budget", 30) for n in range(4, 24)]
    lifecycle += [breach(n, 24) for n in range(4, 40)]  # 4..23 answered after the due time: real
    lifecycle += [breach(1, 24)]  # c1 was answered at hour 2: the breach is not counted
    lifecycle += lifecycle[:3]  # at-least-once duplicates change nothing
    report = conversion(handoffs, lifecycle)
    v1 = report["by_version"]["v1"]
    assert (v1["mqls"], v1["sqls"], v1["rejected"], v1["closed_won"]) == (40, 4, 20, 1)
    assert v1["answered"] == 24
    assert v1["mql_to_sql"] == 0.1 and v1["mql_to_won"] == 0.025
    assert v1["sla_breach_rate"] == 36 / 40
    assert v1["median_hours_to_first_touch"] == 30.0  # 4 at 2 h, 20 at 30 h
    assert "too loose" in v1["verdict"]
    assert report["by_version"]["v2"]["mqls"] == 1 and "too few" in report["by_version"]["v2"]["verdict"]
    assert {row["week"] for row in report["by_version_and_week"]} == {"2026-W10"}


def test_no_verdict_on_the_bar_without_sales_outcomes():
    """MQLs nobody has answered yet (or outcomes no worker has scored) say nothing about the bar."""
    handoffs = [mql(n) for n in range(40)]
    silent = conversion(handoffs, [])["by_version"]["v1"]
    assert silent["mql_to_sql"] == 0.0 and silent["verdict"] == "no sales outcomes yet: nothing to judge"
    few = conversion(handoffs, [moved(n, "sql", "sales accepted", 2) for n in range(5)])["by_version"]["v1"]
    assert few["verdict"] == "too few sales outcomes to judge (5 of 40 MQLs answered)"
