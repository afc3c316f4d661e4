"""The outbox sweep: acts on verdicts that were recorded but whose actions never settled (a replica
died, or was stopped, between recording and acting), so actions are at least once whatever the
source, and never repeated once settled.

Every ``interval`` (and at start) it claims outbox entries older than ``grace`` in batches (a lease:
the store renews their time, so another replica sharing the database leaves them alone while this one
acts), acts on them through the responder, and settles them. Entries this process is still acting on
or settling (``holding``: the responder's; a store outage can delay a settle past the grace) are left
to it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta

from prometheus_client import CollectorRegistry, Counter

from tribunal.store import Record, UnsettledActions, settle_until_done

log = logging.getLogger(__name__)

Respond = Callable[[Sequence[Record]], Awaitable[None]]


class OutboxSweep:
    """A component (``start``/``stop``). ``stop`` lets the batch being acted on finish for up to
    ``stop_grace`` seconds, then cancels it: what it had not settled is replayed after ``grace``.

    ``settle``: the sweep settles what ``respond`` acted on (retried until the store takes it); False
    when ``respond`` settles itself (the Responder with an outbox, which writes the outcomes with the
    settle). ``holding(evidence_id)``: true for entries this process is acting on or settling, which
    the sweep leaves alone."""

    def __init__(
        self,
        outbox: UnsettledActions,
        respond: Respond,
        registry: CollectorRegistry,
        *,
        grace: float,
        interval: float | None = None,
        batch_size: int = 100,
        stop_grace: float = 10.0,
        settle: bool = True,
        holding: Callable[[str], bool] | None = None,
    ) -> None:
        self.outbox = outbox
        self.respond = respond
        self.settle = settle
        self.holding = holding
        self.grace = timedelta(seconds=grace)
        self.interval = grace / 2 if interval is None else interval
        self.batch_size = batch_size
        self.stop_grace = stop_grace
        self.replayed = Counter(
            "tribunal_outbox_replayed",
            "Verdicts acted on by the outbox sweep: recorded, but their actions had never settled.",
            registry=registry,
        )
        self.sweeps = Counter(
            "tribunal_outbox_sweeps", "Passes of the outbox sweep, by result.", ["result"], registry=registry
        )
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._stopping.clear()
        self._task = asyncio.create_task(self._run(), name="tribunal-outbox-sweep")

    async def stop(self) -> None:
        if self._task is None:
            return
        self._stopping.set()
        task, self._task = self._task, None
        _, late = await asyncio.wait({task}, timeout=self.stop_grace)
        if late:
            log.warning("outbox sweep: stopped while acting; the rest is replayed after the grace period")
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def sweep(self) -> int:
        """One pass: claim, act and settle batches until the due entries are done (or ``stop``);
        returns how many verdicts were acted on."""
        done = 0
        while not self._stopping.is_set():
            batch = await self.outbox.claim_unsettled(self.grace, self.batch_size)
            if not batch:
                break
            holding = self.holding
            mine = batch if holding is None else [r for r in batch if not holding(r.evidence_id)]
            if mine:
                log.info("outbox sweep: acting on %d verdicts whose actions never settled", len(mine))
                await self.respond(mine)
                if self.settle:
                    await settle_until_done(self.outbox, [r.evidence_id for r in mine])
                self.replayed.inc(len(mine))
                done += len(mine)
            if len(batch) < self.batch_size:
                break
        return done

    async def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                await self.sweep()
            except Exception:  # the database may be away for a while: try again next time
                self.sweeps.labels("error").inc()
                log.exception("outbox sweep failed")
            else:
                self.sweeps.labels("ok").inc()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.interval)
