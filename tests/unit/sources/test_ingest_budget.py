"""IngestBudget: at most N requests and B bytes at once; a request alone always fits; a request waits
for room up to its limit, then is told no; room given back wakes the waiters."""

from __future__ import annotations

import asyncio

from tribunal.sources.ingest import IngestBudget


async def test_requests_past_the_count_wait_and_get_room_when_one_is_given_back() -> None:
    budget = IngestBudget(max_requests=2, max_bytes=1000)
    assert await budget.take(10, wait=0) and await budget.take(10, wait=0)
    assert not await budget.take(10, wait=0)
    waiting = asyncio.create_task(budget.take(10, wait=5))
    await asyncio.sleep(0)
    assert not waiting.done()
    await budget.give_back(10)
    assert await waiting
    assert (budget.requests, budget.bytes) == (2, 20)


async def test_bytes_are_bounded_but_a_request_alone_always_fits() -> None:
    budget = IngestBudget(max_requests=10, max_bytes=100)
    assert await budget.take(5000, wait=0)  # over the whole budget: counted as the budget
    assert budget.bytes == 100
    assert not await budget.take(1, wait=0.01)
    await budget.give_back(5000)
    assert (budget.requests, budget.bytes) == (0, 0)
    assert await budget.take(60, wait=0) and not await budget.take(60, wait=0)
    assert await budget.take(40, wait=0)
