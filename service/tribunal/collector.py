"""How a long-running Tribunal process sets up Python's garbage collector once it has started.

Everything built at start (compiled policies, models, clients) lives as long as the process, so it is
collected once and frozen out of every later pass. The youngest generation is then collected after
10,000 more allocations than deallocations instead of 700: a request's objects are freed by reference
counting long before, so a collection mostly walks what is still in flight (reviews being judged,
verdicts waiting to be recorded) and promotes it, to be walked again by the older generations. At
2,500 reviews/s the default thresholds cost the webhook's event loop 6-7% of its time in 2,100
young and 190 middle collections per 12 s (1.7 ms each); these cost it under 0.5% in 18 and 1
(docs/benchmarks.md). Reference cycles are still collected, about every second at that load."""

from __future__ import annotations

import gc

THRESHOLDS = (10_000, 10, 10)


def settle() -> None:
    """Collect, freeze what survives (see the module docstring), and set ``THRESHOLDS``."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
