"""Zstandard with a preset dictionary of marketing words: how person states and stored
conversion records are compressed.

Pure. The dictionary holds values common in marketing data (the enumerations, the usual
UTM sources, media and interaction verbs), so the first mention of each in a value costs a
back-reference instead of the word (bench/suite.py measures the bytes). Stored values
decode only with this exact dictionary: change it with care. Values written by earlier
versions as zlib streams (with the same dictionary) still decode.
"""

from __future__ import annotations

import zlib

import orjson
import zstandard

from stream.core.validation import CHANNELS, DIRECTNESS, MEDIUM_KINDS, STAGES

VOCABULARY = (
    b",".join(
        orjson.dumps(word)
        for word in (
            *sorted(CHANNELS | MEDIUM_KINDS | DIRECTNESS | STAGES),
            *("google", "bing", "meta", "facebook", "instagram", "linkedin", "youtube", "tiktok"),
            *("newsletter", "cpc", "organic", "social", "referral", "none", "brand", "partner"),
            *("click", "impression", "visit", "open", "view", "call", "citation"),
        )
    )
    + b',null,true,false,0.0]],[[{"page":"/"},{"page":"/product"},{"page":"/pricing"}'
)
_DICTIONARY = zstandard.ZstdCompressionDict(VOCABULARY, dict_type=zstandard.DICT_TYPE_RAWCONTENT)
_DICTIONARY.precompute_compress(level=1)
# no checksum (Redis keeps the bytes), no dictionary id (there is one dictionary)
_PACK = zstandard.ZstdCompressor(level=1, dict_data=_DICTIONARY, write_checksum=False, write_dict_id=False)
_UNPACK = zstandard.ZstdDecompressor(dict_data=_DICTIONARY)
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"  # a Zstandard frame; anything else is a zlib stream


def pack(data: bytes) -> bytes:
    """`data` as one Zstandard frame (level 1, the dictionary)."""
    return _PACK.compress(data)


def unpack(payload: bytes) -> bytes:
    """The bytes `pack` packed; also a zlib stream written by an earlier version."""
    if payload[:4] == ZSTD_MAGIC:
        return _UNPACK.decompress(payload)
    unpacker = zlib.decompressobj(zdict=VOCABULARY)
    return unpacker.decompress(payload) + unpacker.flush()


_DENSE_DICTIONARY = zstandard.ZstdCompressionDict(VOCABULARY, dict_type=zstandard.DICT_TYPE_RAWCONTENT)
_DENSE_DICTIONARY.precompute_compress(level=6)  # a prepared dictionary fixes the level
_DENSE = zstandard.ZstdCompressor(dict_data=_DENSE_DICTIONARY, write_checksum=False, write_dict_id=False)


def pack_dense(data: bytes) -> bytes:
    """`pack` at level 6: for values written once and kept long (conversion records), where
    ~6 % fewer bytes are worth twice the CPU (~40 µs for a 10-touch record)."""
    return _DENSE.compress(data)
