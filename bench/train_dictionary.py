"""Train the zstd dictionary stored values are compressed with (streams/state/codec.py).

The samples are real values: generated journeys scored by the embedded engine with compression
off, everything it commits at every batch (a state is written many times in its life, not only at
its end): contact states and their journal's base and checkpoint, journal entries (events as
consumed) and account member snapshots. The dictionary learns the vocabulary they share: field
names, rule and event names, paths, UTM values, timestamp prefixes.

A shipped dictionary is never replaced in place: stored values name the id they were written
with. To ship a new one, give it a new id and file in codec.py's DICTIONARY_FILES, keep the old.

    .venv/bin/python -m bench.train_dictionary            # writes streams/state/dictionaries/
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
import zstandard

from leadstream.bootstrap import pipeline_of
from leadstream.config.loader import load_model
from leadstream.config.settings import Settings
from leadstream.engine.ports import MemorySink
from leadstream.engine.records import SourceRecord
from leadstream.state import MemoryStateStore
from leadstream.state.codec import DICTIONARY_FILES, VALUES_DICTIONARY_ID
from leadstream.state.port import (
    BASE_PART,
    CHECKPOINT_PART,
    JOURNAL_PART,
    MEMBER_PART,
    PENDING_PART,
    RecordWrite,
    decode_journal,
)
from leadstream.tools.generator import JourneyGenerator, default_start

__all__ = ["collect_states", "main", "train"]

DICTIONARY_BYTES = 32_768
MAX_SAMPLES = 60_000


class _Capturing:
    """The in-memory store, keeping a copy of every value committed (the compiled store's own
    methods cannot be replaced on an instance)."""

    def __init__(self, inner: MemoryStateStore, samples: list[bytes]) -> None:
        self._inner = inner
        self._samples = samples

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def commit(self, writes: Sequence[RecordWrite]) -> set[str]:
        for write in writes:
            if ":{c:" in write.key and write.value is not None:
                self._samples.append(write.value)
            for name, value in write.parts.items():
                if not value:
                    continue
                if name.startswith(JOURNAL_PART):
                    self._samples.append(decode_journal(value)[1])
                elif name in (BASE_PART, CHECKPOINT_PART) or name.startswith((MEMBER_PART, PENDING_PART)):
                    self._samples.append(value)
        return await self._inner.commit(writes)


def collect_states(contacts: int, seed: int) -> list[bytes]:
    """Every value the engine commits while scoring ``contacts`` generated journeys."""
    settings = Settings(state_compression="none")
    samples: list[bytes] = []
    pipeline = pipeline_of(settings, _Capturing(MemoryStateStore(), samples), MemorySink(), load_model())
    events = JourneyGenerator(seed, contacts, start=default_start()).events()
    records = [
        SourceRecord(settings.topics.accounts if e["type"] == "account" else "file", 0, i, orjson.dumps(e))
        for i, e in enumerate(events)
    ]

    async def run() -> None:
        for at in range(0, len(records), 1000):
            await pipeline.process(records[at : at + 1000])

    asyncio.run(run())
    return samples


def train(samples: list[bytes], dict_id: int) -> bytes:
    picked: list[bytes | bytearray | memoryview] = list(
        random.Random(0).sample(samples, min(MAX_SAMPLES, len(samples)))
    )
    trained = zstandard.train_dictionary(DICTIONARY_BYTES, picked, dict_id=dict_id, level=3, threads=0)
    return trained.as_bytes()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.train_dictionary", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--contacts", type=int, default=8_000)
    parser.add_argument("--seed", type=int, default=101)
    parser.add_argument("--out", type=Path, default=Path("streams/state/dictionaries"))
    args = parser.parse_args(argv)
    print(f"[dictionary] scoring {args.contacts:,} generated journeys", file=sys.stderr)
    samples = collect_states(args.contacts, args.seed)
    print(
        f"[dictionary] training on {min(len(samples), MAX_SAMPLES):,} of {len(samples):,} states",
        file=sys.stderr,
    )
    data = train(samples, VALUES_DICTIONARY_ID)
    path = args.out / DICTIONARY_FILES[VALUES_DICTIONARY_ID]
    path.write_bytes(data)
    print(f"[dictionary] {len(data):,} bytes written to {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
