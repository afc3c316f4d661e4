"""MicroBatcher: two batches per worker at a time, late arrivals batched together (the second slot
filled once as many wait as the last batch held), abandoned reviews not sent, a pool failure reaching
every review of its batch."""

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


class GatedPool:
    """Answers each batch once the test opens that batch's gate."""

    def __init__(self, workers: int = 1) -> None:
        self.workers = workers
        self.batches: list[list[str]] = []
        self.gates: list[asyncio.Event] = []

    async def judge_raw(self, items: Sequence[RawItem]) -> list[Outcome]:
        self.batches.append([source for _, source, _ in items])
        gate = asyncio.Event()
        self.gates.append(gate)
        await gate.wait()
        return [Rejected(source, "internal", f"judged {source}") for _, source, _ in items]


async def settle() -> None:
    """Let every ready task run (a gate opened takes a few loop turns to become a new batch)."""
    for _ in range(10):
        await asyncio.sleep(0)


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


async def test_the_second_slot_waits_for_as_many_reviews_as_the_last_batch_held() -> None:
    pool = GatedPool()
    batcher = MicroBatcher(pool)
    futures = [batcher.submit(item(name)) for name in "abcd"]
    await settle()
    assert pool.batches == [["a"], ["b"]]
    pool.gates[0].set()  # a batch back: everything waiting goes at once
    await settle()
    assert pool.batches == [["a"], ["b"], ["c", "d"]]
    pool.gates[1].set()
    await settle()
    futures.append(batcher.submit(item("e")))
    await settle()
    assert len(pool.batches) == 3  # a slot is free, but one review is fewer than the last batch's two
    futures.append(batcher.submit(item("f")))
    await settle()
    assert pool.batches[3] == ["e", "f"]
    for gate in pool.gates[2:]:
        gate.set()
    outcomes = await asyncio.gather(*futures)
    assert [o.source for o in outcomes] == list("abcdef")


async def test_a_review_goes_at_once_while_a_worker_has_no_batch() -> None:
    pool = GatedPool(workers=2)  # four slots
    batcher = MicroBatcher(pool)
    futures = [batcher.submit(item(name)) for name in "abcdefg"]
    await settle()
    assert pool.batches == [["a"], ["b"], ["c"], ["d"]]
    pool.gates[0].set()
    await settle()
    assert pool.batches[4] == ["e", "f", "g"]
    for gate in pool.gates[1:4]:
        gate.set()
    await settle()  # only the batch of three is out: the other worker is idle
    futures.append(batcher.submit(item("h")))
    await settle()
    assert pool.batches[5] == ["h"]  # not held back for two more, as a queued slot would be
    for gate in pool.gates[4:]:
        gate.set()
    outcomes = await asyncio.gather(*futures)
    assert [o.source for o in outcomes] == list("abcdefgh")


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
