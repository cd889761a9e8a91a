"""Handoffs and lifecycle events are built as plain dicts (scoring/handoff.py, accounts.py,
lifecycle.py): each must be exactly what its schema's model makes of it, field for field, in
order, with its types."""

from __future__ import annotations

import asyncio
import random

import orjson
import pytest

from leadstream.bootstrap import build_embedded
from leadstream.config.loader import load_model
from leadstream.config.settings import Settings
from leadstream.engine.records import SourceRecord
from leadstream.schemas.handoff import BuyingGroupHandoff, MqlHandoff
from leadstream.schemas.lifecycle import LifecycleTransition, SlaBreach
from leadstream.scoring.signals import to_datetime, to_json_time
from leadstream.tools.generator import JourneyGenerator, default_start


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


@pytest.mark.parametrize("seed", [1, 2])
def test_every_mql_handoff_is_what_the_schema_model_writes(seed):
    handoffs = _outputs(seed, 300, "mql")
    assert len(handoffs) > 20
    with_context = 0
    for raw in handoffs:
        handoff = orjson.loads(raw)
        assert orjson.dumps(MqlHandoff.model_validate(handoff).model_dump(mode="json")) == orjson.dumps(
            handoff
        )
        with_context += bool(handoff["first_touch"] and handoff["first_touch"]["utm_source"])
    assert with_context  # the first touch's optional fields were exercised


@pytest.mark.parametrize("seed", [1, 2])
def test_every_buying_group_handoff_is_what_the_schema_model_writes(seed):
    handoffs = _outputs(seed, 600, "buying_group")
    assert len(handoffs) > 3
    for raw in handoffs:
        handoff = orjson.loads(raw)
        through_the_model = BuyingGroupHandoff.model_validate(handoff).model_dump(mode="json")
        assert orjson.dumps(through_the_model) == orjson.dumps(handoff)


@pytest.mark.parametrize(
    ("kind", "model"), [("transition", LifecycleTransition), ("sla_breached", SlaBreach)]
)
def test_every_lifecycle_event_is_what_the_schema_model_writes(kind, model):
    events = _outputs(3, 600, kind, topic="lifecycle")
    assert len(events) > 5
    for raw in events:
        event = orjson.loads(raw)
        assert orjson.dumps(model.model_validate(event).model_dump(mode="json")) == orjson.dumps(event)


@pytest.mark.parametrize("seconds", [0.0, 1764950400.0, 1764950400.25, 1764950400.123457, 4102444800.5])
def test_times_are_written_as_pydantic_writes_an_aware_datetime(seconds):
    from pydantic import AwareDatetime, TypeAdapter

    assert to_json_time(seconds) == TypeAdapter(AwareDatetime).dump_python(to_datetime(seconds), mode="json")
