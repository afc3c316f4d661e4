"""How a long-running Tribunal process sets up Python's garbage collector once it has started.

Everything built at start (compiled policies, models, clients) lives as long as the process, so it is
collected once and frozen out of every later pass. The youngest generation is then collected after
50,000 more allocations than deallocations instead of 700: a request's objects are freed by reference
counting long before, so a collection mostly walks what is still in flight (reviews being judged,
verdicts waiting to be recorded, rows being built) and promotes it, to be walked again by the older
generations. What is in flight swings by thousands of objects with each batch the recorder writes,
so a lower threshold keeps being crossed: at 2,200-2,600 reviews/s the webhook's event loop spent
3.5% of its time collecting with 10,000 (142 young and 13 middle collections per 30 s, 6 ms each)
and 0.1% with 50,000 (2 young ones, 18 ms each), and 6-7% with the interpreter's 700
(docs/benchmarks.md). Reference cycles are still collected, every few seconds at that load."""

from __future__ import annotations

import gc

THRESHOLDS = (50_000, 10, 10)


def settle() -> None:
    """Collect, freeze what survives (see the module docstring), and set ``THRESHOLDS``."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
