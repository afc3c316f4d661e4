"""collector.settle: what a started process does to the garbage collector."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from tribunal import collector


@pytest.fixture
def restored_gc() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


def test_settle_freezes_what_lives_and_raises_the_young_threshold(restored_gc: None) -> None:
    survivor = [object() for _ in range(10)]
    collector.settle()
    assert gc.get_freeze_count() > len(survivor)
    assert gc.get_threshold() == collector.THRESHOLDS
    assert collector.THRESHOLDS[0] > 700  # the interpreter's default, which cost the webhook 6-7%
