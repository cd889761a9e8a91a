"""Handoffs and lifecycle events are built as plain dicts (scoring/handoff.py, accounts.py,
lifecycle.py): each must be exactly what its schema's model makes of it, field for field, in
order, with its types."""

from __future__ import annotations

import asyncio
import json
import random
from datetime import UTC, datetime
from pathlib import Path

import jsonschema
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leadstream.bootstrap import build_embedded
from leadstream.config.loader import load_model
from leadstream.config.settings import Settings
from leadstream.engine.records import SourceRecord
from leadstream.schemas.handoff import BuyingGroupHandoff, MqlHandoff
from leadstream.schemas.lifecycle import LifecycleTransition, SlaBreach
from leadstream.scoring.signals import to_datetime, to_json_time
from leadstream.tools.generator import JourneyGenerator, default_start

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas" / "json"


def _holds_to(model, schema_file: str, raw: bytes) -> None:
    """The record is what ``model`` dumps, byte for byte, and its published JSON Schema accepts it."""
    record = orjson.loads(raw)
    assert orjson.dumps(model.model_validate(record).model_dump(mode="json")) == orjson.dumps(record)
    jsonschema.validate(record, json.loads((SCHEMAS / schema_file).read_text()))


def _outputs(seed: int, contacts: int, kind: str, topic: str = "handoffs") -> list[bytes]:
    settings = Settings()
    pipeline, sink, _store = build_embedded(settings, load_model())
    lines = [orjson.dumps(e) for e in JourneyGenerator(seed, contacts, start=default_start()).events()]
    random.Random(seed).shuffle(lines)  # late and early arrivals: first touches move, journals replay
    records = [
        SourceRecord(settings.topics.accounts if b'"type":"account"' in line else "events", 0, i, line)
        for i, line in enumerate(lines)
    ]

    async def run() -> None:
        for start in range(0, len(records), 500):
            await pipeline.process(records[start : start + 500])

    asyncio.run(run())
    out = sink.on_topic(getattr(settings.topics, topic))
    return [r.value for r in out if r.value and orjson.loads(r.value)["kind"] == kind]


@pytest.mark.parametrize(
    ("seed", "contacts", "topic", "kind", "model", "schema_file"),
    [
        (1, 300, "handoffs", "mql", MqlHandoff, "mql_handoff.schema.json"),
        (2, 300, "handoffs", "mql", MqlHandoff, "mql_handoff.schema.json"),
        (1, 600, "handoffs", "buying_group", BuyingGroupHandoff, "buying_group_handoff.schema.json"),
        (2, 600, "handoffs", "buying_group", BuyingGroupHandoff, "buying_group_handoff.schema.json"),
        (3, 600, "lifecycle", "transition", LifecycleTransition, "lifecycle_transition.schema.json"),
        (3, 600, "lifecycle", "sla_breached", SlaBreach, "sla_breach.schema.json"),
    ],
)
def test_every_output_record_is_what_its_schema_model_writes(seed, contacts, topic, kind, model, schema_file):
    records = _outputs(seed, contacts, kind, topic)
    assert len(records) > 3
    for raw in records:
        _holds_to(model, schema_file, raw)
    if kind == "mql":  # the first touch's optional fields were exercised
        assert any(b'"utm_source":"' in raw for raw in records)


@pytest.mark.parametrize("seconds", [0.0, 1764950400.0, 1764950400.25, 1764950400.123457, 4102444800.5])
def test_times_are_written_as_pydantic_writes_an_aware_datetime(seconds):
    from pydantic import AwareDatetime, TypeAdapter

    assert to_json_time(seconds) == TypeAdapter(AwareDatetime).dump_python(to_datetime(seconds), mode="json")


def _reference_json_time(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, tz=UTC).isoformat()[:-6] + "Z"


@settings(max_examples=2000, deadline=None)
@given(
    st.one_of(
        st.floats(min_value=0, max_value=4.2e9, allow_nan=False),
        # half a microsecond either side of a whole one, and of the next second: the rounding edges
        st.builds(
            lambda s, us, d: s + us / 1e6 + d,
            st.integers(0, 4_200_000_000),
            st.integers(0, 1_000_000),
            st.sampled_from([0.0, 5e-7, -5e-7, 4.99e-7, 5.01e-7]),
        ).filter(lambda x: x >= 0),
        st.floats(min_value=253_402_214_400.0, max_value=253_402_300_799.0),  # 9999-12-31: the slow path
    )
)
def test_times_are_formatted_as_datetime_formats_them(seconds):
    assert to_json_time(seconds) == _reference_json_time(seconds)
