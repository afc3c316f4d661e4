"""How raw evidence bodies are kept: zstd-compressed; bodies written by earlier versions (zlib) still
read back.

zstd, not zlib: on the shared AdmissionReviews (1.9 KB on average) zstd level 3 keeps about the same
share of the size as zlib level 1 (32.8% against 33.1%) for 7 µs of CPU per body instead of 23, which
the recorder spends on the webhook's event loop for every verdict (bench/bench_store.py). A compressor and
a decompressor each hold a context that costs about 17 µs to set up, so they are made once and reused
(neither is safe to share between threads: each store has its own, used from its event loop)."""

from __future__ import annotations

import zlib

import zstandard

DEFAULT_LEVEL = 3
# Every zstd frame starts with these bytes; a zlib stream starts with 0x78 (deflate, 32 KB window)
# or another CMF byte whose low nibble is 8, never 0x28.
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


class RawCodec:
    """Compresses raw bodies for the store (zstd at ``level``, 1-19) and reads back what any
    version stored (zstd or zlib)."""

    def __init__(self, level: int = DEFAULT_LEVEL) -> None:
        if not 1 <= level <= 19:
            raise ValueError(f"zstd level {level}: choose 1 (fastest) to 19")
        self.level = level
        self._compressor = zstandard.ZstdCompressor(level=level)
        self._decompressor = zstandard.ZstdDecompressor()

    def compress(self, raw: bytes) -> bytes:
        return self._compressor.compress(raw)

    def decompress(self, stored: bytes) -> bytes:
        if stored[:4] == _ZSTD_MAGIC:
            return self._decompressor.decompress(stored)
        return zlib.decompress(stored)
