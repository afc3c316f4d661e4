# ruff: noqa: E501  (SQL reads better unwrapped)
"""Report building over a large record, on SQLite and PostgreSQL.

Fills a fresh database with N verdicts (default 1,000,000) by bulk INSERT ... SELECT in the database
itself (evidence rows, verdicts, ~40% with one or two violations, the findings and daily rollups the
store derives from them), then times, as a Markdown table: building the cis-k8s report (the builder
reads findings and rollups), rendering it as JSON and HTML, and beside them the ceiling measured in the
same run: a bare ``SELECT count(*)`` and a ``GROUP BY`` aggregate over the same verdicts. Also times the
real write path (``SqlStore.record``) on a small sample, for the write rate.

    python bench/bench_report.py [--verdicts 1000000] [--backends sqlite,postgresql] [--write-sample 5000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys
import tempfile
import time
import uuid
from pathlib import Path

import asyncpg
from sqlalchemy import text

from tribunal.model import EvidenceKind, parse_evidence
from tribunal.policy import Judge, load_policy_set
from tribunal.reports import build_report, get_format, load_framework
from tribunal.store import Record, SqlStore

ROOT = Path(__file__).resolve().parents[1]
PG_ADMIN = os.environ.get("TRIBUNAL_BENCH_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test")
POLICIES = [
    "privileged_containers",
    "host_namespaces",
    "host_ports",
    "run_as_root_user",
    "seccomp_unconfined",
    "capabilities_baseline",
    "image_tag",
]
NAMESPACES, PODS_PER_NAMESPACE, DAYS = 200, 50, 30


def _series(dialect: str, n: int) -> str:
    if dialect == "postgresql":
        return f"(SELECT i FROM generate_series(0, {n - 1}) AS i) s"
    return f"(WITH RECURSIVE c(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM c WHERE i < {n - 1}) SELECT i FROM c) s"


def _fill_sql(dialect: str, n: int) -> list[str]:
    pg = dialect == "postgresql"
    step = DAYS * 86400 / n
    at = (
        f"(TIMESTAMPTZ '2025-01-01 00:00:00+00' + i * INTERVAL '{step} seconds')"
        if pg
        else f"datetime('2025-01-01', '+' || CAST(i * {step} AS INTEGER) || ' seconds')"
    )
    ns = f"('ns-' || (i % {NAMESPACES}))"
    pod = f"('web-' || ((i / {NAMESPACES}) % {PODS_PER_NAMESPACE}))"
    key = f"({ns} || '/Pod/' || {pod})"
    subject = (
        f"""('{{"namespace":"' || {ns} || '","workload_kind":"Pod","workload_name":"' || {pod} || '"}}')"""
    )
    series = _series(dialect, n)
    policy_case = "CASE " + " ".join(f"WHEN m = {k} THEN '{p}'" for k, p in enumerate(POLICIES)) + " END"
    day = "CAST(v.received_at AT TIME ZONE 'UTC' AS DATE)" if pg else "date(v.received_at)"
    return [
        "INSERT INTO evidence (id, kind, received_at, source, subject_key, namespace, subject, raw, raw_size, "
        f"pruned_at) SELECT 'ev-' || i, 'admission', {at}, 'bench', {key}, {ns}, {subject}, NULL, 0, NULL "
        f"FROM {series}",
        "INSERT INTO verdicts (evidence_id, kind, subject_key, namespace, decision, policy_revision, engine, "
        f"received_at, evaluated_at, latency_ms) SELECT 'ev-' || i, 'admission', {key}, {ns}, "
        f"CASE WHEN i % 10 < 4 THEN 'deny' ELSE 'allow' END, 'bench', 'regorus', {at}, {at}, 0.3 FROM {series}",
        # ~40% of verdicts violate one policy, 10% a second one.
        "INSERT INTO violations (evidence_id, policy, severity, enforcement, msg, controls, details, exception) "
        f"SELECT 'ev-' || i, {policy_case.replace('m =', '(i % 7) =')}, 'high', 'deny', 'bench violation', "
        f"'[]', '{{}}', NULL FROM {series} WHERE i % 10 < 4",
        "INSERT INTO violations (evidence_id, policy, severity, enforcement, msg, controls, details, exception) "
        f"SELECT 'ev-' || i, {policy_case.replace('m =', '((i + 3) % 7) =')}, 'medium', 'warn', 'bench', "
        f"'[]', '{{}}', NULL FROM {series} WHERE i % 10 = 0",
        "INSERT INTO findings (policy, subject_key, kind, namespace, subject, severity, status, first_seen, "
        "last_seen, count, first_evidence_id, last_evidence_id, msg, controls, exception, last_judged, "
        "resolved_at) SELECT x.policy, v.subject_key, 'admission', v.namespace, min(e.subject), 'high', "
        "CASE WHEN length(v.subject_key) % 3 = 0 THEN 'resolved' ELSE 'open' END, min(v.received_at), "
        "max(v.received_at), count(*), min(v.evidence_id), max(v.evidence_id), 'bench violation', '[]', "
        "NULL, max(v.received_at), NULL FROM violations x JOIN verdicts v ON v.evidence_id = x.evidence_id "
        "JOIN evidence e ON e.id = v.evidence_id GROUP BY x.policy, v.subject_key, v.namespace",
        "INSERT INTO daily_activity (day, namespace, kind, verdicts, denied, warned) "
        f"SELECT {day}, v.namespace, v.kind, count(*), sum(CASE WHEN v.decision = 'deny' THEN 1 ELSE 0 END), "
        f"0 FROM verdicts v GROUP BY {day}, v.namespace, v.kind",
        "INSERT INTO daily_violations (day, namespace, policy, violations) "
        f"SELECT {day}, v.namespace, x.policy, count(*) FROM violations x "
        f"JOIN verdicts v ON v.evidence_id = x.evidence_id GROUP BY {day}, v.namespace, x.policy",
    ]


async def _timed(label: str, results: list[tuple[str, float, str]], coro, note: str = "") -> object:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    value = await coro
    results.append((label, time.perf_counter() - start, note))
    return value


async def bench_backend(url: str, n: int, write_sample: int) -> list[tuple[str, float, str]]:
    results: list[tuple[str, float, str]] = []
    policy_set = load_policy_set(ROOT / "policies")
    kinds = {p.id: EvidenceKind(p.kind) for p in policy_set.policies.values()}
    framework = load_framework(ROOT / "rules", "cis-k8s")
    async with SqlStore(url) as store:
        start = time.perf_counter()
        async with store.engine.begin() as conn:
            for statement in _fill_sql(store.dialect, n):
                await conn.execute(text(statement))
        if store.dialect == "postgresql":
            async with store.engine.connect() as conn:
                await conn.execution_options(isolation_level="AUTOCOMMIT")
                await conn.execute(text("ANALYZE"))
        counts = await store.counts()
        results.append(("populate (bulk INSERT ... SELECT)", time.perf_counter() - start, f"{counts}"))

        async def scalar(sql: str) -> object:
            async with store.engine.connect() as conn:
                return (await conn.execute(text(sql))).all()

        await _timed(
            "ceiling: SELECT count(*) FROM verdicts", results, scalar("SELECT count(*) FROM verdicts")
        )
        await _timed(
            "ceiling: GROUP BY namespace, decision over verdicts",
            results,
            scalar("SELECT namespace, decision, count(*) FROM verdicts GROUP BY namespace, decision"),
        )
        report = await _timed(
            "build cis-k8s report (all namespaces)",
            results,
            build_report(store, framework, policy_kinds=kinds),
        )
        failing = sum(len(c.failing) for c in report.controls)  # type: ignore[attr-defined]
        results[-1] = (*results[-1][:2], f"{failing} failing resources, {len(report.scopes)} scopes")  # type: ignore[attr-defined]
        await _timed(
            "build cis-k8s report (one namespace)",
            results,
            build_report(store, framework, policy_kinds=kinds, namespace="ns-7"),
        )
        for fmt in ("json", "html"):
            start = time.perf_counter()
            body = get_format(fmt).render(report)  # type: ignore[arg-type]
            results.append((f"render {fmt}", time.perf_counter() - start, f"{len(body) / 1e6:.1f} MB"))

        judge = Judge.build(policy_set)
        records = []
        for i in range(write_sample):
            doc = {
                "apiVersion": "admission.k8s.io/v1",
                "kind": "AdmissionReview",
                "request": {
                    "uid": f"w-{i}",
                    "kind": {"group": "", "version": "v1", "kind": "Pod"},
                    "resource": {"group": "", "version": "v1", "resource": "pods"},
                    "namespace": f"ns-{i % NAMESPACES}",
                    "operation": "CREATE",
                    "object": {
                        "apiVersion": "v1",
                        "kind": "Pod",
                        "metadata": {"name": f"web-{i % 97}", "namespace": f"ns-{i % NAMESPACES}"},
                        "spec": {"containers": [{"name": "a", "image": "nginx:1.27",
                                                 "securityContext": {"privileged": i % 3 == 0}}]},
                    },
                },
            }  # fmt: skip
            ev = parse_evidence(doc, "bench")
            records.append(Record(ev, judge.judge(ev)))
        start = time.perf_counter()
        for i in range(0, len(records), 500):
            await store.record(records[i : i + 500])
        took = time.perf_counter() - start
        results.append(
            (f"record() {write_sample} judged reviews, batches of 500", took, f"{write_sample / took:,.0f}/s")
        )
    return results


async def _pg_database() -> str:
    name = f"tribunal_bench_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(PG_ADMIN)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return name


async def _drop(name: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def machine() -> str:
    cpu = "unknown cpu"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import sqlite3

    return (
        f"{platform.platform()}, {os.cpu_count()} CPUs ({cpu}), Python {platform.python_version()}, "
        f"SQLite {sqlite3.sqlite_version}"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--verdicts", type=int, default=1_000_000)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--write-sample", type=int, default=5000)
    args = parser.parse_args()
    print(f"Machine: {machine()}\n")
    for backend in args.backends.split(","):
        if backend == "sqlite":
            with tempfile.TemporaryDirectory() as tmp:
                results = await bench_backend(
                    f"sqlite+aiosqlite:///{tmp}/bench.db", args.verdicts, args.write_sample
                )
        else:
            name = await _pg_database()
            try:
                url = (
                    PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://") + "/" + name
                )
                conn = await asyncpg.connect(PG_ADMIN)
                version = await conn.fetchval("SHOW server_version")
                await conn.close()
                print(f"PostgreSQL {version}")
                results = await bench_backend(url, args.verdicts, args.write_sample)
            finally:
                await _drop(name)
        print(f"\n### {backend}, {args.verdicts:,} verdicts\n")
        print("| step | seconds | notes |\n|---|---:|---|")
        for label, seconds, note in results:
            print(f"| {label} | {seconds:.3f} | {note} |")
        sys.stdout.flush()


if __name__ == "__main__":
    asyncio.run(main())
