"""Running the scoring worker in the foreground (``leadstream worker``)."""

from __future__ import annotations

import logging
import os
import sys

import faust

from leadstream.bootstrap import build_worker, tune_gc
from leadstream.config.settings import Settings
from leadstream.errors import StateLost
from leadstream.kafka.topics import ensure_topics
from leadstream.native import mode

__all__ = ["run_worker", "start_over"]

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
        try:
            asyncio.run(build_confluent_worker(settings))
        except StateLost as lost:
            start_over(lost)
        return
    app = build_worker(settings)
    tune_gc()
    worker = faust.Worker(app, loglevel=settings.log_level.lower(), quiet=True)
    worker.execute_from_commandline()


def start_over(lost: StateLost) -> None:
    """Run this worker again from the start, in this process (same pid, same log): it opens the
    state as it is now and reads its partitions from their marks (state/progress.py). Nothing
    of the old process carries over: caches, watermarks and held records all belonged to the
    state that is gone."""
    logger.error("%s", lost)
    logger.warning("starting the worker over: %s", " ".join(sys.orig_argv))
    logging.shutdown()
    os.execv(sys.executable, [sys.executable, *sys.orig_argv[1:]])
