"""Record batches the consumer cannot read become dead letters instead of a crash loop.

aiokafka (under faust) raises from its fetcher when a record batch cannot be decompressed (a codec
library missing) or fails its checksum, and the next fetch of the same offset raises again: the
worker would exit at every start. ``tolerate_unreadable_batches`` makes aiokafka hand out one
placeholder record for such a batch instead (no key, no value, a header saying what failed and at
which offsets) and move past it; the pipeline dead-letters the placeholder with that reason. The
confluent engine gets the same from librdkafka as a record with an error (confluent_loop.py).

This wraps two methods of aiokafka's ``PartitionRecords`` (pinned below 0.15 in pyproject.toml);
a test builds real record batches to check the wrapping still matches aiokafka's code.
"""

from __future__ import annotations

import logging
from typing import Any

from aiokafka.consumer import fetcher
from aiokafka.errors import CorruptRecordException, UnsupportedCodecError
from aiokafka.structs import ConsumerRecord

from leadstream.engine.input.decode import UNREADABLE_HEADER

__all__ = ["tolerate_unreadable_batches"]

logger = logging.getLogger(__name__)
_PATCHED = "_leadstream_tolerant"


class _RememberingRecords:
    """The fetched records of one partition, remembering the batch handed out last."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.last: Any = None

    def has_next(self) -> bool:
        return bool(self._inner.has_next())

    def next_batch(self) -> Any:
        self.last = self._inner.next_batch()
        return self.last

    def size_in_bytes(self) -> int:
        return int(self._inner.size_in_bytes())


def tolerate_unreadable_batches() -> None:
    """Install the wrapping (idempotent)."""
    records_class: Any = fetcher.PartitionRecords
    if getattr(records_class, _PATCHED, False):
        return
    original_init = records_class.__init__

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        self._records = _RememberingRecords(self._records)
        self._records_iterator = self._unpack_records()

    def __next__(self: Any) -> Any:
        if self._records_iterator is None:
            raise StopIteration
        try:
            return next(self._records_iterator)
        except StopIteration:
            self._records_iterator = None  # as aiokafka does: break the reference cycle
            raise
        except (UnsupportedCodecError, CorruptRecordException) as exc:
            batch = self._records.last
            if batch is None:
                raise
            return _placeholder(self, batch, exc)

    records_class.__init__ = __init__
    records_class.__next__ = __next__
    setattr(records_class, _PATCHED, True)


def _placeholder(partition_records: Any, batch: Any, exc: Exception) -> ConsumerRecord[Any, Any]:
    tp = partition_records._tp
    first, following = batch.base_offset, batch.next_offset
    reason = (
        f"records {first}..{following - 1} of {tp.topic}:{tp.partition} could not be read "
        f"({type(exc).__name__}: {exc}); if the producer compresses, check that the codec is gzip, "
        "snappy, lz4 or zstd and that leadstream's dependencies are installed (cramjam)"
    )
    logger.error("%s: dead-lettered, consuming on from offset %d", reason, following)
    # Move past the batch: the next records come from the batches after it.
    partition_records.next_fetch_offset = following
    partition_records._records_iterator = partition_records._unpack_records()
    return ConsumerRecord(
        topic=tp.topic,
        partition=tp.partition,
        offset=first,
        timestamp=-1,
        timestamp_type=0,
        key=None,
        value=None,
        checksum=None,
        serialized_key_size=-1,
        serialized_value_size=-1,
        headers=[(UNREADABLE_HEADER, reason.encode())],
    )
