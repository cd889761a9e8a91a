"""An event's time in epoch seconds: exactly what ``datetime.timestamp()`` gives, by a faster
path for times in UTC (the ones pydantic parses from "Z" and those made with timezone.utc)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import AwareDatetime, TypeAdapter

from leadstream.schemas.events import PageView
from leadstream.scoring.epoch import PARSED_UTC, epoch

_PARSE = TypeAdapter(AwareDatetime)
_ZONES = st.sampled_from(
    [
        UTC,
        timezone(timedelta(hours=2)),
        timezone(timedelta(hours=-9, minutes=-30)),
        ZoneInfo("America/New_York"),
    ]
)


@settings(max_examples=3000, deadline=None)
@given(st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)), _ZONES)
def test_a_time_in_any_zone_gives_what_timestamp_gives(naive, zone):
    moment = naive.replace(tzinfo=zone)
    assert epoch(moment) == moment.timestamp()


@settings(max_examples=2000, deadline=None)
@given(
    st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)),
    st.sampled_from(["Z", "+00:00", "+05:30", "-08:00"]),
)
def test_a_parsed_time_gives_what_timestamp_gives(naive, offset):
    moment = _PARSE.validate_python(naive.isoformat() + offset)
    assert epoch(moment) == moment.timestamp()


def test_an_event_parsed_in_utc_takes_the_fast_path():
    # If pydantic stopped sharing one tzinfo for UTC, epoch would stay exact but lose its speed.
    event = PageView.model_validate_json(
        b'{"event_id":"e1","type":"page_view","occurred_at":"2026-08-09T01:08:43.401716Z",'
        b'"contact_id":"c1","url":"https://example.com/pricing"}'
    )
    assert event.occurred_at.tzinfo is PARSED_UTC
    assert epoch(event.occurred_at) == 1786237723.401716
