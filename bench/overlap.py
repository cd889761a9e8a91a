"""Whether Redis commits one chunk of contacts while the worker decides the next: the scoring
pipeline over the real Redis store, sends of commits a chunk at a time against one send a batch.

    .venv/bin/python -m bench.overlap --contacts 4000 --repeats 3

A worker waits for Redis at every round trip, and Redis runs on another core: a batch's commits
sent only once every contact is decided keep that core idle while the worker decides, and the
worker idle while Redis commits. Both variants run in one process, alternating, on the same events
(batches of the worker's 1,000 records, each run under a fresh key prefix), so the machine's
drift from run to run weighs on both alike. Prints the wall and CPU time an event of each, and
their ratio (median of the repeats). Needs the local stack's Redis (LEADSTREAM_REDIS_URL).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
import uuid
from collections.abc import Sequence

import orjson

from leadstream.bootstrap import pipeline_of, redis_blocking, redis_store
from leadstream.config.loader import load_model
from leadstream.config.settings import Settings
from leadstream.engine.ports import MemorySink
from leadstream.engine.records import SourceRecord
from leadstream.engine.stages.contact import COMMIT_CHUNK
from leadstream.tools.generator import JourneyGenerator, default_start

__all__ = ["main", "run_once"]

BATCH = 1_000  # the worker's default batch_max
ONE_SEND = 1_000_000  # every contact of a batch decided before its commits go out


def run_once(lines: Sequence[bytes], chunk: int) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of the pipeline over ``lines`` under a fresh prefix."""
    settings = Settings(redis_key_prefix=f"overlap{uuid.uuid4().hex[:8]}")
    records = [
        SourceRecord(settings.topics.accounts if b'"type":"account"' in line else "events", 0, i, line)
        for i, line in enumerate(lines)
    ]

    async def run() -> tuple[float, float]:
        pipeline = pipeline_of(settings, redis_store(settings), MemorySink(), load_model())
        pipeline.commit_chunk = chunk
        wall, cpu = time.perf_counter(), time.process_time()
        for at in range(0, len(records), BATCH):
            await pipeline.process(records[at : at + BATCH])
        return time.perf_counter() - wall, time.process_time() - cpu

    try:
        return asyncio.run(run())
    finally:
        client = redis_blocking(settings)
        for key in client.scan_iter(match=f"{settings.redis_key_prefix}*", count=1000):
            client.delete(key)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--contacts", type=int, default=4_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--chunk", type=int, default=COMMIT_CHUNK, help="contacts a send (the default's)")
    args = parser.parse_args(argv)
    generated = JourneyGenerator(args.seed, args.contacts, start=default_start()).events()
    lines = [orjson.dumps(e) for e in generated]
    print(f"{len(lines)} events, batches of {BATCH}, chunks of {args.chunk}", file=sys.stderr)
    run_once(lines[:BATCH], args.chunk)  # warm-up: imports, the function library, connections
    ratios, chunked, whole = [], [], []
    for repeat in range(args.repeats):
        one = run_once(lines, ONE_SEND)
        many = run_once(lines, args.chunk)
        whole.append(one)
        chunked.append(many)
        ratios.append(many[0] / one[0])
        print(
            f"  repeat {repeat + 1}/{args.repeats}: one send a batch {one[0] / len(lines) * 1e6:.1f} µs "
            f"an event (CPU {one[1] / len(lines) * 1e6:.1f}), chunks {many[0] / len(lines) * 1e6:.1f} "
            f"(CPU {many[1] / len(lines) * 1e6:.1f}): {many[0] / one[0]:.3f}",
            file=sys.stderr,
        )
    summary = {
        "events": len(lines),
        "chunk": args.chunk,
        "one_send_wall_us": round(statistics.median(w for w, _ in whole) / len(lines) * 1e6, 1),
        "chunked_wall_us": round(statistics.median(w for w, _ in chunked) / len(lines) * 1e6, 1),
        "one_send_cpu_us": round(statistics.median(c for _, c in whole) / len(lines) * 1e6, 1),
        "chunked_cpu_us": round(statistics.median(c for _, c in chunked) / len(lines) * 1e6, 1),
        "wall_ratio": round(statistics.median(ratios), 3),
    }
    print(f"chunked/one send, wall time an event: {summary['wall_ratio']:.3f} (median of {args.repeats})")
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
