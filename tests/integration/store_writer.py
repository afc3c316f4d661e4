"""A separate writer process for the concurrency test: ``python -m tests.integration.store_writer URL
FIRST LAST`` records the evidence numbered FIRST..LAST-1 (see ``numbered_record``) in small batches."""

from __future__ import annotations

import asyncio
import sys

from tests.conftest import POLICY_DIR
from tests.integration.conftest import make_record_with
from tribunal.policy import Judge, load_policy_set
from tribunal.store import SqlStore


async def main(url: str, first: int, last: int) -> None:
    judge = Judge.build(load_policy_set(POLICY_DIR))
    build = make_record_with(judge)
    store = SqlStore(url)
    await store.start()
    try:
        batch = []
        for i in range(first, last):
            batch.append(numbered_record(build, i))
            if len(batch) == 17:
                await store.record(batch)
                batch = []
        await store.record(batch)
    finally:
        await store.stop()


def numbered_record(build, i: int):  # type: ignore[no-untyped-def]
    """Evidence i: pod web-(i % 7), privileged when i % 3 == 0, i minutes after T0."""
    return build(f"uid-{i:05d}", name=f"web-{i % 7}", privileged=i % 3 == 0, minutes=i)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))
