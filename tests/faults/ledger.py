"""What each fault test counted, as one row of docs/reliability.md's table.

A fault test calls the ``ledger`` fixture with a :class:`FaultRow` once it has counted what went in
and what came out, *before* asserting (so a run that lost or duplicated something still shows it).
At the end of the run, tests/faults/conftest.py prints the rows as a markdown table and writes it to
``.faults/table.md`` (git-ignored); ``make reliability-doc`` splices that file into
docs/reliability.md between ``<!-- faults:begin -->`` and ``<!-- faults:end -->`` (tests/faults/splice.py).

Every test of tests/faults/ is also bounded in time: :func:`bounded` wraps its body in
``asyncio.timeout`` (so its ``finally`` blocks still stop the processes it started), and collection
refuses a fault test without it.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from tests.conftest import PROJECT

OUTPUT = PROJECT / ".faults"
TABLE = OUTPUT / "table.md"

COLUMNS = (
    "fault (how it is injected)",
    "test",
    "in",
    "recorded",
    "dead-lettered",
    "actions",
    "duplicates",
    "lost",
)

P = ParamSpec("P")
R = TypeVar("R")


@dataclass
class FaultRow:
    """One fault and its counts. Counts are numbers where the test counted them; ``note`` fields
    say what was counted (e.g. ``in_="300 Falco alerts"``). ``None`` is "not applicable" (—)."""

    fault: str
    injected: str
    in_: str
    recorded: str
    dead_lettered: int | str | None
    actions: str | None
    duplicates: int | str
    lost: int | str
    test: str = ""
    outcome: str = field(default="", compare=False)

    def cells(self) -> list[str]:
        def cell(value: object) -> str:
            return "—" if value is None else str(value).replace("|", "\\|")

        test = f"`{self.test}`" + (
            f" **{self.outcome}**" if self.outcome and self.outcome != "passed" else ""
        )
        return [
            f"{cell(self.fault)}: {cell(self.injected)}",
            test,
            cell(self.in_),
            cell(self.recorded),
            cell(self.dead_lettered),
            cell(self.actions),
            cell(self.duplicates),
            cell(self.lost),
        ]


ROWS: list[FaultRow] = []


def markdown(rows: list[FaultRow]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(row.cells()) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def write_table(rows: list[FaultRow], path: Path = TABLE) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(markdown(rows))
    return path


def bounded(seconds: float) -> Callable[[Callable[P, Awaitable[R]]], Callable[P, Awaitable[R]]]:
    """The test's whole body under ``asyncio.timeout(seconds)``: a hang fails the test with a
    TimeoutError, and the ``finally`` blocks and context managers of the test still run (the
    processes it started are killed)."""

    def wrap(test: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
        @functools.wraps(test)
        async def run(*args: P.args, **kwargs: P.kwargs) -> R:
            async with asyncio.timeout(seconds):
                return await test(*args, **kwargs)

        run.__bounded__ = seconds  # type: ignore[attr-defined]
        return run

    return wrap


def short_id(nodeid: str) -> str:
    """``tests/faults/test_x.py::test_y[p]`` -> ``test_x.py::test_y[p]``."""
    return nodeid.rsplit("/", 1)[-1]


def is_bounded(function: Any) -> bool:
    return getattr(function, "__bounded__", None) is not None
