"""The live page's data, folded from handoff and lifecycle records (pure)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from leadstream.ingest.live_view import LiveView, histogram


def mql(n: int, day: str = "2026-03-02", version: str = "v1") -> dict:
    return {
        "kind": "mql",
        "handoff_id": f"h{n}",
        "contact_id": f"c{n}",
        "email_display": f"p{n}@acme.io",
        "account_domain": "acme.io",
        "qualified_at": f"{day}T10:00:00Z",
        "model_version": version,
        "fit": {"score": 40},
        "engagement": {"score": 70, "signals": [{"rule": "demo_request"}, {"rule": "pricing"}]},
    }


def group(domain: str, at: str, missing: list[str]) -> dict:
    return {
        "kind": "buying_group",
        "handoff_id": f"g-{domain}-{at}",
        "domain": domain,
        "qualified_at": at,
        "reason": "buying_group",
        "engaged_contacts": 3,
        "roles_covered": ["champion"],
        "roles_missing": missing,
    }


def test_redelivered_handoffs_change_nothing_and_the_feed_pages_by_sequence():
    view = LiveView()
    for record in [mql(1), mql(2, "2026-03-03"), mql(1), mql(3, "2026-03-03")]:
        view.add_handoff(record)
    first = view.snapshot()
    assert first["seq"] == 3 and [h["handoff_id"] for h in first["feed"]] == ["h1", "h2", "h3"]
    assert first["mqls_per_day"] == [("2026-03-02", 1), ("2026-03-03", 2)]
    assert first["feed"][0]["who"] == "p1@acme.io" and first["feed"][0]["detail"] == "demo_request, pricing"
    view.add_handoff(mql(4))
    assert [h["handoff_id"] for h in view.snapshot(after=3)["feed"]] == ["h4"]
    assert view.snapshot(after=4)["feed"] == []


def test_conversion_comes_from_lifecycle_records_deduplicated():
    view = LiveView()
    for n in range(3):
        view.add_handoff(mql(n))
    accepted = {
        "kind": "transition",
        "transition_id": "t0",
        "contact_id": "c0",
        "to_stage": "sql",
        "reason": "sales accepted",
        "at": "2026-03-02T12:00:00Z",
        "handoff_id": "h0",
    }
    view.add_lifecycle(accepted)
    view.add_lifecycle(accepted)
    row = view.snapshot()["conversion"]["v1"]
    assert (row["mqls"], row["sqls"], row["answered"]) == (3, 1, 1)


def test_buying_groups_keep_their_latest_handoff_and_only_those_missing_roles_show():
    view = LiveView()
    view.add_handoff(group("a.io", "2026-03-02T10:00:00Z", ["user"]))
    view.add_handoff(group("a.io", "2026-03-05T10:00:00Z", []))  # complete now
    view.add_handoff(group("b.io", "2026-03-04T10:00:00Z", ["champion", "user"]))
    missing = view.snapshot()["groups_missing_roles"]
    assert [(g["domain"], g["roles_missing"]) for g in missing] == [("b.io", ["champion", "user"])]


def test_records_without_ids_are_ignored():
    view = LiveView()
    assert view.add_handoff({"kind": "mql"}) is False
    view.add_lifecycle({"kind": "transition"})
    assert view.snapshot()["seq"] == 0 and view.lifecycle == {}


@given(
    st.lists(st.floats(min_value=-50, max_value=500, allow_nan=False)), st.floats(min_value=0, max_value=300)
)
def test_histogram_counts_every_value_once_and_the_bar_split(values, bar):
    hist = histogram(values, bar)
    assert sum(hist["counts"]) == len(values) == hist["total"]
    assert hist["at_or_above_bar"] == sum(1 for v in values if v >= bar)
    assert len(hist["counts"]) * hist["width"] > max([bar, *values])
