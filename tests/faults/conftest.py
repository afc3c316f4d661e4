"""The fault tests: real `tribunal serve` / `tribunal consume` processes and real components
(PostgreSQL, the Tansu broker, Alertmanager, kube-apiserver and etcd), a fault injected mid-stream,
and everything that went in and came out counted. Each test is bounded in time (ledger.bounded) and
reports one row of docs/reliability.md's table (the ``ledger`` fixture), printed at the end of the
run and written to .faults/table.md.

The components' fixtures are the integration and e2e tests' own (imported here: each directory gets
its own session instance)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import api, control_plane, namespace  # noqa: F401 - fixtures, by name
from tests.faults import ledger as ledger_module
from tests.faults.ledger import ROWS, FaultRow, is_bounded, markdown, short_id, write_table
from tests.integration.conftest import (  # noqa: F401 - fixtures, by name
    client_ssl,
    database_url,
    kafka_bootstrap,
    pg_through_proxy,
    postgres_admin,
    tls_pair,
)

HERE = Path(__file__).resolve().parent


@pytest.fixture
def ledger(request: pytest.FixtureRequest) -> Callable[[FaultRow], None]:
    """``ledger(FaultRow(...))``: this test's row of the reliability table."""

    def add(row: FaultRow) -> None:
        row.test = short_id(request.node.nodeid)
        ROWS.append(row)

    return add


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        in_faults = isinstance(item, pytest.Function) and HERE in Path(str(item.path)).parents
        if in_faults and not is_bounded(item.function):  # type: ignore[attr-defined]
            raise pytest.UsageError(f"{item.nodeid}: a fault test must be @bounded(seconds)")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[Any]:
    report = yield
    if report.when == "call" or report.failed:
        name = short_id(item.nodeid)
        for row in ROWS:
            if row.test == name and (not row.outcome or row.outcome == "passed"):
                row.outcome = report.outcome
    return report


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not ROWS:
        return
    path = write_table(ROWS)
    terminalreporter.write_sep("=", "faults: what went in and what came out")
    for line in markdown(ROWS).splitlines():
        terminalreporter.write_line(line)
    terminalreporter.write_line(f"(written to {path.relative_to(ledger_module.PROJECT)})")
