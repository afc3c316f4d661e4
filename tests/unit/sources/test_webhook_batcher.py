"""MicroBatcher: two batches per worker at a time, late arrivals batched together, abandoned reviews
not sent, a pool failure reaching every review of its batch."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from tribunal.model import EvidenceKind
from tribunal.policy import Outcome, RawItem, Rejected
from tribunal.sources.webhook import MicroBatcher


class FakePool:
    """Answers each item with a Rejected naming it, once ``release`` is set; records the batches."""

    def __init__(self, workers: int, fail: bool = False) -> None:
        self.workers = workers
        self.fail = fail
        self.batches: list[list[str]] = []
        self.release = asyncio.Event()

    async def judge_raw(self, items: Sequence[RawItem]) -> list[Outcome]:
        self.batches.append([source for _, source, _ in items])
        await self.release.wait()
        if self.fail:
            raise RuntimeError("pool is stopped")
        return [Rejected(source, "internal", f"judged {source}") for _, source, _ in items]


def item(name: str) -> RawItem:
    return (b"{}", name, EvidenceKind.ADMISSION)


async def test_reviews_arriving_while_the_workers_are_busy_go_together() -> None:
    pool = FakePool(workers=1)
    batcher = MicroBatcher(pool)  # two slots: the worker has a batch waiting behind the one it judges
    futures = [batcher.submit(item(f"r{i}")) for i in range(5)]
    await asyncio.sleep(0)
    assert pool.batches == [["r0"], ["r1"]]  # a free slot takes a review at once, alone
    pool.release.set()
    outcomes = await asyncio.gather(*futures)
    assert pool.batches == [["r0"], ["r1"], ["r2", "r3", "r4"]]
    assert [o.source for o in outcomes] == ["r0", "r1", "r2", "r3", "r4"]


async def test_a_review_given_up_before_its_batch_leaves_is_not_sent() -> None:
    sizes: list[int] = []
    pool = FakePool(workers=1)
    batcher = MicroBatcher(pool, slots=1, observe=sizes.append)
    first = batcher.submit(item("a"))
    late = batcher.submit(item("b"))
    kept = batcher.submit(item("c"))
    late.cancel()  # its deadline passed while waiting
    pool.release.set()
    await asyncio.gather(first, kept)
    assert pool.batches == [["a"], ["c"]] and sizes == [1, 1]


async def test_a_pool_failure_reaches_every_review_of_the_batch() -> None:
    pool = FakePool(workers=1, fail=True)
    batcher = MicroBatcher(pool)
    futures = [batcher.submit(item(name)) for name in "xyz"]
    pool.release.set()
    results = await asyncio.gather(*futures, return_exceptions=True)
    assert all(isinstance(r, RuntimeError) for r in results)
    with pytest.raises(RuntimeError):
        await batcher.submit(item("after"))
