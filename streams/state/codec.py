"""How stored values are compressed: zstd with a dictionary trained on what the engine stores.

A contact's state is ~1.2 KB of JSON whose keys, rule names, event types and paths repeat from
contact to contact. zlib sees one small record at a time and finds little to share (about 600
bytes, ~22 µs per write); zstd with a dictionary already holding that vocabulary writes about
260 bytes in ~3 µs and reads it back in ~1 µs. The dictionary ships with the package and is
never changed in place: a new one gets a new id, and every id ever shipped stays readable.

Every form is read whatever the setting says (JSON starts with ``{``, a zstd frame with its
magic number, anything else is zlib), so the setting can be switched at any time.
"""

from __future__ import annotations

import threading
import zlib
from functools import cache
from importlib import resources
from typing import Final, Literal

import zstandard

__all__ = [
    "DICTIONARY_FILES",
    "VALUES_DICTIONARY_ID",
    "Codec",
    "compress_value",
    "decompress_value",
    "dictionary",
]

Codec = Literal["zstd", "zlib", "none"]

ZSTD_MAGIC: Final = b"\x28\xb5\x2f\xfd"
VALUES_DICTIONARY_ID: Final = 1_0001  # stored values, version 1 (bench/train_dictionary.py)
# Every dictionary ever shipped, by its id: a stored value names the one it was written with.
DICTIONARY_FILES: Final = {VALUES_DICTIONARY_ID: "values-1.zdict"}
ZSTD_LEVEL: Final = 1  # with the dictionary, level 3 saves ~3% of the bytes for ~15% more CPU

_local: Final = threading.local()  # zstd (de)compressors are not safe to share between threads


@cache
def dictionary(dict_id: int) -> zstandard.ZstdCompressionDict:
    name = DICTIONARY_FILES.get(dict_id)
    if name is None:
        raise ValueError(
            f"a stored value was compressed with zstd dictionary {dict_id}, which this version of "
            "leadstream does not ship: run the version that wrote it (or a newer one)"
        )
    data = resources.files("leadstream.state").joinpath(f"dictionaries/{name}").read_bytes()
    loaded = zstandard.ZstdCompressionDict(data, dict_type=zstandard.DICT_TYPE_FULLDICT)
    loaded.precompute_compress(level=ZSTD_LEVEL)
    return loaded


def _compressor() -> zstandard.ZstdCompressor:
    compressor: zstandard.ZstdCompressor | None = getattr(_local, "compressor", None)
    if compressor is None:
        compressor = zstandard.ZstdCompressor(
            level=ZSTD_LEVEL, dict_data=dictionary(VALUES_DICTIONARY_ID), write_checksum=False
        )
        _local.compressor = compressor
    return compressor


def _decompressor(dict_id: int) -> zstandard.ZstdDecompressor:
    cached: dict[int, zstandard.ZstdDecompressor] | None = getattr(_local, "decompressors", None)
    if cached is None:
        cached = _local.decompressors = {}
    found = cached.get(dict_id)
    if found is None:
        found = cached[dict_id] = zstandard.ZstdDecompressor(
            dict_data=dictionary(dict_id) if dict_id else None
        )
    return found


def compress_value(raw: bytes, codec: Codec) -> bytes:
    """``raw`` (JSON) as stored under ``codec``."""
    if codec == "zstd":
        return _compressor().compress(raw)
    if codec == "zlib":
        return zlib.compress(raw, 1)
    return raw


def decompress_value(stored: bytes) -> bytes:
    """The JSON behind a stored value, whichever codec wrote it."""
    head = stored[:4]
    if head[:1] == b"{":
        return stored
    if head == ZSTD_MAGIC:
        dict_id = zstandard.get_frame_parameters(stored).dict_id
        return _decompressor(dict_id).decompress(stored)
    return zlib.decompress(stored)
