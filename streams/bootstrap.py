"""The composition root: the only code that reads settings and opens connections."""

from __future__ import annotations

import logging
from typing import Any

import faust
import redis.asyncio as aioredis

from config.settings import Settings
from streams.processors.faust_app import attach_batch_agent, make_app
from streams.processors.skeleton import SkeletonProcessor
from streams.sinks import FaustProducerSink

logger = logging.getLogger(__name__)


def redis_client(settings: Settings) -> Any:
    """An asyncio Redis client; it connects on first use."""
    password = settings.redis_password.get_secret_value() if settings.redis_password else None
    return aioredis.from_url(settings.redis_url, password=password, decode_responses=False)


def build_worker(settings: Settings) -> faust.App:
    """Wire the scoring worker: faust app, Redis, sink and processor."""
    app = make_app(settings)
    processor = SkeletonProcessor(
        redis_client(settings), FaustProducerSink(app), settings.topics, settings.redis_key_prefix
    )
    attach_batch_agent(app, settings, processor)
    return app
