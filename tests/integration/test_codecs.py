"""Topics a producer compressed (gzip, snappy, lz4, zstd) are read by both worker engines."""

from __future__ import annotations

import pytest

from leadstream.kafka.clients import make_producer
from leadstream.kafka.topic_io import produce_all
from leadstream.kafka.topics import ensure_topics
from leadstream.tools.generator import TOPIC_OF_TYPE
from tests.factories import buyer_journey, encode
from tests.integration.helpers import handoffs, read_all, wait_caught_up

pytestmark = pytest.mark.integration
CODECS = ("gzip", "snappy", "lz4", "zstd")


@pytest.mark.parametrize("engine", ["faust", "confluent"])
def test_every_codec_is_consumed_and_scored(settings, start_worker, engine):
    settings = settings.model_copy(update={"worker_engine": engine})
    ensure_topics(settings)
    start_worker(settings)
    for codec in CODECS:
        journey = buyer_journey(f"buyer-{codec}")
        records = [
            (getattr(settings.topics, TOPIC_OF_TYPE[e["type"]]), e["contact_id"].encode(), encode(e))
            for e in journey
        ]
        # linger so each journey's records travel in compressed batches of several records
        produce_all(make_producer(settings, **{"compression.type": codec, "linger.ms": 50}), records)
    wait_caught_up(settings)
    qualified = {h["contact_id"] for h in handoffs(settings) if h["kind"] == "mql"}
    assert qualified == {f"buyer-{codec}" for codec in CODECS}
    assert read_all(settings, settings.topics.dead_letters) == []
