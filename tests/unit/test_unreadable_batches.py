"""A record batch the faust engine's consumer cannot read becomes one dead-letter placeholder
and consuming moves on past it (real aiokafka record batches and fetch code)."""

from __future__ import annotations

import struct
from unittest import mock

import aiokafka.codec as codec
from aiokafka.consumer.fetcher import PartitionRecords
from aiokafka.record.default_records import DefaultRecordBatchBuilder
from aiokafka.record.memory_records import MemoryRecords
from aiokafka.structs import TopicPartition

from leadstream.config.loader import load_model
from leadstream.engine.input.decode import decode_event
from leadstream.engine.records import SourceRecord
from leadstream.errors import InvalidEvent
from leadstream.kafka.unreadable import tolerate_unreadable_batches

LZ4, GZIP = 3, 1


def batch(codec_id: int, base: int, count: int) -> bytes:
    builder = DefaultRecordBatchBuilder(
        magic=2,
        compression_type=codec_id,
        is_transactional=0,
        producer_id=-1,
        producer_epoch=-1,
        base_sequence=-1,
        batch_size=1 << 20,
    )
    for i in range(count):
        builder.append(i, timestamp=1000 + i, key=b"k", value=b'{"n": %d}' % (base + i), headers=[])
    raw = bytearray(builder.build())
    struct.pack_into(">q", raw, 0, base)  # the batch's base offset, as the broker sets it
    return bytes(raw)


def read(data: bytes) -> tuple[list, int]:
    records = PartitionRecords(TopicPartition("t", 0), MemoryRecords(data), [], 0, None, None, True, 0)
    return list(records), records.next_fetch_offset


def test_a_batch_in_a_codec_the_consumer_lacks_becomes_one_placeholder_and_consuming_goes_on():
    tolerate_unreadable_batches()
    data = batch(LZ4, 0, 3) + batch(GZIP, 3, 2)
    assert [r.value for r in read(data)[0]] == [
        b'{"n": 0}',
        b'{"n": 1}',
        b'{"n": 2}',
        b'{"n": 3}',
        b'{"n": 4}',
    ]
    with mock.patch.object(codec, "cramjam", None):  # as if the lz4 library were not installed
        records, next_offset = read(data)
    placeholder, *rest = records
    assert (placeholder.offset, placeholder.value, placeholder.key) == (0, None, None)
    [(name, reason)] = placeholder.headers
    assert name == "leadstream.unreadable"
    assert b"records 0..2 of t:0 could not be read" in reason and b"lz4" in reason
    assert [(r.offset, r.value) for r in rest] == [(3, b'{"n": 3}'), (4, b'{"n": 4}')]
    assert next_offset == 5

    # The pipeline dead-letters the placeholder with that reason, for the operator.
    source = SourceRecord("t", 0, placeholder.offset, None, headers=tuple(placeholder.headers))
    try:
        decode_event(source, load_model().event_policy)
    except InvalidEvent as exc:
        assert exc.reason == "unreadable" and "lz4" in str(exc)
    else:
        raise AssertionError("the placeholder must be dead-lettered")


def test_installing_twice_wraps_once():
    tolerate_unreadable_batches()
    first = PartitionRecords.__next__
    tolerate_unreadable_batches()
    assert PartitionRecords.__next__ is first
