"""Raw evidence bodies are stored zstd-compressed; what earlier versions stored (zlib) reads back."""

from __future__ import annotations

import zlib

import pytest

from tribunal.store.raw import RawCodec

BODY = b'{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {"uid": "u"}}' * 20


@pytest.mark.parametrize("level", [1, 3, 19])
def test_a_body_comes_back_as_it_went_in_and_smaller(level: int) -> None:
    codec = RawCodec(level)
    stored = codec.compress(BODY)
    assert len(stored) < len(BODY) / 4
    assert RawCodec().decompress(stored) == BODY  # any level reads back with any codec


@pytest.mark.parametrize("level", [1, 6, 9])
def test_zlib_bodies_written_before_zstd_still_read(level: int) -> None:
    assert RawCodec().decompress(zlib.compress(BODY, level)) == BODY


def test_an_empty_body_round_trips() -> None:
    codec = RawCodec()
    assert codec.decompress(codec.compress(b"")) == b""


@pytest.mark.parametrize("level", [0, 20])
def test_a_level_zstd_does_not_take_is_refused(level: int) -> None:
    with pytest.raises(ValueError, match=f"zstd level {level}"):
        RawCodec(level)
