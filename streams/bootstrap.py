"""The composition root: the only code that reads settings and opens connections."""

from __future__ import annotations

import logging
from typing import Any

import faust
import redis.asyncio as aioredis

from config.loader import load_model
from config.model import ScoringModel
from config.settings import Settings
from streams.errors import InfrastructureError
from streams.pipeline import ScoringPipeline
from streams.processors.faust_app import attach_batch_agent, attach_timer, make_app
from streams.retry import RetryingProcessor
from streams.scoring import compile_model
from streams.sinks import FaustProducerSink, MemorySink
from streams.state import MemoryStateStore, RedisStateStore
from streams.state.packing import use_hiredis_packing
from streams.timers import TimerService

logger = logging.getLogger(__name__)
DAY_S = 86_400


def redis_client(settings: Settings) -> Any:
    """An asyncio Redis client; it connects on first use."""
    password = settings.redis_password.get_secret_value() if settings.redis_password else None
    client = aioredis.from_url(settings.redis_url, password=password, decode_responses=False)
    return use_hiredis_packing(client)


def redis_store(settings: Settings) -> RedisStateStore:
    return RedisStateStore(redis_client(settings), settings.state_ttl_days * DAY_S)


def scoring_model(settings: Settings) -> ScoringModel:
    return load_model(settings.model_path)


def pipeline_of(settings: Settings, store: Any, sink: Any, model: ScoringModel) -> ScoringPipeline:
    """The scoring pipeline over ``store`` and ``sink``, as the settings configure it."""
    return ScoringPipeline(
        store,
        sink,
        model,
        settings.topics,
        settings.redis_key_prefix,
        cache_size=settings.state_cache_entries,
        compress_state=settings.state_compression == "zlib",
    )


def timers_of(settings: Settings, store: Any, sink: Any, model: ScoringModel) -> TimerService:
    """The timer service (SLA breaches, decayed MQLs) over the same store and sink."""
    return TimerService(
        store,
        store,
        sink,
        compile_model(model),
        settings.topics,
        settings.redis_key_prefix,
        compress=settings.state_compression == "zlib",
    )


def build_worker(settings: Settings) -> faust.App:
    """Wire the scoring worker: faust app, Redis store, Kafka sink, scoring pipeline."""
    model = scoring_model(settings)
    app = make_app(settings)
    store, sink = redis_store(settings), FaustProducerSink(app)
    pipeline = pipeline_of(settings, store, sink, model)
    attach_batch_agent(app, settings, RetryingProcessor(pipeline))
    timers = timers_of(settings, store, sink, model)
    clock = pipeline.clock
    attach_timer(app, settings.timer_interval_s, _logged(lambda wall: timers.tick(clock.now(wall))))
    logger.info("scoring model %s loaded", model.version)
    return app


def build_confluent_worker(settings: Settings) -> Any:
    """Wire the confluent-kafka loop: the same pipeline and timer service, no faust."""
    from confluent_kafka import Producer

    from streams.processors.confluent_loop import run_loop
    from streams.sinks import ConfluentSink
    from streams.topics import kafka_client_config

    model = scoring_model(settings)
    store = redis_store(settings)
    producer = Producer(
        {
            **kafka_client_config(settings),
            "linger.ms": 2,
            "enable.idempotence": True,
            "partitioner": "murmur2_random",
        }
    )
    sink = ConfluentSink(producer)
    pipeline = pipeline_of(settings, store, sink, model)
    timers = timers_of(settings, store, sink, model)
    logger.info("scoring model %s loaded", model.version)
    return run_loop(settings, RetryingProcessor(pipeline), _logged(timers.tick), pipeline.clock)


def _logged(tick: Any) -> Any:
    """A timer tick that logs an infrastructure failure and tries again next tick."""

    async def run(wall: float) -> None:
        try:
            await tick(wall)
        except InfrastructureError as exc:
            logger.error("timer tick failed, retrying on the next one: %s", exc)

    return run


def build_embedded(
    settings: Settings, model: ScoringModel
) -> tuple[ScoringPipeline, MemorySink, MemoryStateStore]:
    """The same pipeline over in-memory state and sink: no Kafka, no Redis (``leadstream replay``)."""
    store, sink = MemoryStateStore(), MemorySink()
    return (
        pipeline_of(settings, store, sink, model),
        sink,
        store,
    )
