"""Running the scoring worker in the foreground (``leadstream worker``)."""

from __future__ import annotations

import logging

import faust

from leadstream.bootstrap import build_worker, tune_gc
from leadstream.config.settings import Settings
from leadstream.kafka.topics import ensure_topics
from leadstream.native import mode

__all__ = ["run_worker"]

logger = logging.getLogger(__name__)


def run_worker(settings: Settings) -> None:
    """Create missing topics, then run the faust worker until SIGINT/SIGTERM."""
    ensure_topics(settings)
    # A stale build runs pure Python (slower, same results): the operator should see which.
    logger.info("leadstream worker: the hot path runs %s", mode())
    if settings.worker_engine == "confluent":
        import asyncio

        from leadstream.bootstrap import build_confluent_worker

        tune_gc()
        asyncio.run(build_confluent_worker(settings))
        return
    app = build_worker(settings)
    tune_gc()
    worker = faust.Worker(app, loglevel=settings.log_level.lower(), quiet=True)
    worker.execute_from_commandline()
