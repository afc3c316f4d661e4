"""The verdict write path (``SqlStore.record_new``) on SQLite and PostgreSQL.

Judges the shared AdmissionReviews (../shared/fixtures/admission when present, else examples/) N times
over (default 5,000), each copy with a unique uid and one of 100 namespaces, so every record is new
evidence and findings see a realistic number of subjects; then records them in batches of --batch
(default 500) into a fresh database (SQLite: a temporary file in WAL mode; PostgreSQL: a database
created and dropped) and prints verdicts/s and CPU ms per verdict (``time.process_time``: this
process only, so the database server's own work is not counted). Beside it, the ceiling measured in
the same run: the same number of evidence, verdict and violation rows, pre-built as tuples, inserted
with the driver's executemany (no SQLAlchemy, no findings or rollups). Also compares zstd levels (the
store's codec) with zlib (its codec before) on the raw bodies.

    python bench/bench_store.py [--verdicts 5000] [--backends sqlite,postgresql] [--rounds 3] [--batch 500]
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import gc
import os
import statistics
import sys
import tempfile
import time
import uuid
import zlib
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import asyncpg
import orjson

from tribunal.model import EvidenceKind, parse_evidence
from tribunal.policy import Judge, load_policy_set
from tribunal.store import Record, SqlStore
from tribunal.store.raw import RawCodec

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "fixtures" / "admission"
PG_ADMIN = os.environ.get("TRIBUNAL_BENCH_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test")
BATCH = 500  # the default --batch: a Kafka consumer's batch (the webhook hands over ~25 at 500/s)
T0 = datetime(2025, 3, 1, tzinfo=UTC)


def reviews() -> list[dict[str, Any]]:
    folder = SHARED if SHARED.is_dir() else ROOT / "examples" / "admission"
    docs = [orjson.loads(p.read_bytes()) for p in sorted(folder.glob("*.json"))]
    return [d for d in docs if isinstance(d, dict) and d.get("kind") == "AdmissionReview"]


def build_records(n: int, tag: str) -> list[Record]:
    """n judged reviews with unique uids, namespaces ns-0..ns-99, one second apart."""
    judge = Judge.build(load_policy_set(ROOT / "policies"))
    samples = reviews()
    records = []
    for i in range(n):
        doc = copy.deepcopy(samples[i % len(samples)])
        namespace = f"ns-{i % 100}"
        doc["request"]["uid"] = f"{tag}-{i:07d}"
        doc["request"]["namespace"] = namespace
        if isinstance(doc["request"].get("object"), dict):
            doc["request"]["object"].setdefault("metadata", {})["namespace"] = namespace
        raw = orjson.dumps(doc)
        ev = parse_evidence(orjson.loads(raw), "bench", EvidenceKind.ADMISSION)
        ev = ev.model_copy(update={"received_at": T0 + timedelta(seconds=i)})
        records.append(Record(ev, judge.judge(ev), raw=raw))
    return records


async def timed(work: Callable[[], Awaitable[None]]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process)."""
    wall, cpu = time.perf_counter(), time.process_time()
    await work()
    return time.perf_counter() - wall, time.process_time() - cpu


def ceiling_rows(records: list[Record], dialect: str) -> tuple[list[tuple[Any, ...]], ...]:
    """Evidence, verdict and violation rows as tuples, under fresh ids (no conflict with the store's)."""

    def at(value: datetime) -> Any:
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None).isoformat(" ") if dialect == "sqlite" else value

    codec = RawCodec()
    evidence, verdicts, violations = [], [], []
    for r in records:
        eid = "ceiling-" + r.evidence.id
        subject = r.evidence.subject
        key, ns = subject.key(), subject.namespace or ""
        raw = r.raw or b""
        evidence.append(
            (eid, "admission", at(r.evidence.received_at), "bench", key, ns,
             subject.model_dump_json(exclude_none=True), codec.compress(raw), len(raw), None)
        )  # fmt: skip
        v = r.verdict
        verdicts.append(
            (eid, "admission", key, ns, v.decision.value, v.policy_revision, v.engine,
             at(r.evidence.received_at), at(v.evaluated_at), v.latency_ms)
        )  # fmt: skip
        for x in v.violations:
            violations.append(
                (eid, x.policy, x.severity.value, x.enforcement.value, x.msg,
                 orjson.dumps(x.controls).decode(), orjson.dumps(x.details).decode(), x.exception)
            )  # fmt: skip
    return evidence, verdicts, violations


CEILING_SQL = [
    "INSERT INTO evidence (id, kind, received_at, source, subject_key, namespace, subject, raw, raw_size, "
    "pruned_at) VALUES ({})",
    "INSERT INTO verdicts (evidence_id, kind, subject_key, namespace, decision, policy_revision, engine, "
    "received_at, evaluated_at, latency_ms) VALUES ({})",
    "INSERT INTO violations (evidence_id, policy, severity, enforcement, msg, controls, details, exception) "
    "VALUES ({})",
]


async def ceiling(store: SqlStore, records: list[Record], batch: int) -> tuple[float, float]:
    """Plain driver executemany of the same rows, in batches, one transaction per batch."""
    pg = store.dialect == "postgresql"
    tables = ceiling_rows(records, store.dialect)
    sqls = []
    for sql, rows in zip(CEILING_SQL, tables, strict=True):
        width = len(rows[0])
        marks = ", ".join(f"${i + 1}" for i in range(width)) if pg else ", ".join("?" * width)
        sqls.append(sql.format(marks))
    by_evidence: dict[str, list[tuple[Any, ...]]] = {}
    for row in tables[2]:
        by_evidence.setdefault(row[0], []).append(row)
    async with store.engine.connect() as conn:
        raw = await conn.get_raw_connection()
        driver: Any = raw.driver_connection

        async def work() -> None:
            for i in range(0, len(records), batch):
                ev, vd = tables[0][i : i + batch], tables[1][i : i + batch]
                vl = [x for e in ev for x in by_evidence.get(e[0], ())]
                if pg:
                    async with driver.transaction():
                        for sql, rows in zip(sqls, (ev, vd, vl), strict=True):
                            await driver.executemany(sql, rows)
                else:
                    await driver.execute("BEGIN IMMEDIATE")
                    for sql, rows in zip(sqls, (ev, vd, vl), strict=True):
                        await driver.executemany(sql, rows)
                    await driver.commit()

        return await timed(work)


async def bench_backend(
    url: str, records: list[Record], rounds: int, batch: int
) -> list[tuple[str, float, float]]:
    """(label, wall s, CPU s) per round: the store's write path, then the ceiling."""
    out = []
    async with SqlStore(url) as store:
        for k in range(rounds):
            part = records[k::rounds]

            async def work(part: list[Record] = part) -> None:
                for i in range(0, len(part), batch):
                    await store.record_new(part[i : i + batch])

            out.append(("record_new", *(await timed(work))))
            out.append(("ceiling", *(await ceiling(store, part, batch))))
    return out


def compression_levels(records: list[Record]) -> None:
    """zstd (what the store writes) at a few levels beside zlib (what it wrote before)."""
    bodies = [r.raw for r in records[:2000] if r.raw is not None]
    total = sum(len(b) for b in bodies)
    print(f"\nCompression of {len(bodies)} raw bodies ({total / len(bodies):,.0f} bytes each on average)\n")
    print("| codec | level | compressed size | CPU µs per body |\n|---|---:|---:|---:|")
    codecs: list[tuple[str, int, Callable[[bytes], bytes]]] = [
        *(("zstd (the store)", level, RawCodec(level).compress) for level in (1, 3, 9)),
        *(("zlib", level, partial(zlib.compress, level=level)) for level in (1, 6)),
    ]
    for name, level, compress in codecs:
        start = time.process_time()
        size = sum(len(compress(b)) for b in bodies)
        took = time.process_time() - start
        print(f"| {name} | {level} | {size / total:.1%} | {took / len(bodies) * 1e6:.1f} |")


async def pg_database() -> tuple[str, str]:
    name = f"tribunal_bench_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(PG_ADMIN)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    base = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    return name, f"{base}/{name}"


async def drop(name: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--verdicts", type=int, default=5000, help="per round")
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch", type=int, default=BATCH, help="verdicts per write (one transaction)")
    args = parser.parse_args()
    records = build_records(args.verdicts * args.rounds, uuid.uuid4().hex[:8])
    # The pre-built records stay alive all run: out of the collector, as `tribunal serve` does with what
    # it builds at start-up, so full collections over them are not charged to the write path.
    gc.collect()
    gc.freeze()
    violations = sum(len(r.verdict.violations) for r in records) / len(records)
    print(f"{len(records):,} records, {violations:.1f} violations per verdict on average")
    for backend in args.backends.split(","):
        if backend == "sqlite":
            with tempfile.TemporaryDirectory() as tmp:
                results = await bench_backend(
                    f"sqlite+aiosqlite:///{tmp}/bench.db", records, args.rounds, args.batch
                )
        else:
            name, url = await pg_database()
            try:
                results = await bench_backend(url, records, args.rounds, args.batch)
            finally:
                await drop(name)
        print(f"\n### {backend}, {args.verdicts:,} verdicts per round, batches of {args.batch}\n")
        print("| path | verdicts/s (wall) | CPU ms per verdict | rounds |\n|---|---:|---:|---|")
        for label in ("record_new", "ceiling"):
            walls = [w for name, w, _ in results if name == label]
            cpus = [c for name, _, c in results if name == label]
            rates = sorted(args.verdicts / w for w in walls)
            per = sorted(c / args.verdicts * 1e3 for c in cpus)
            print(
                f"| {label} | {statistics.median(rates):,.0f} ({rates[0]:,.0f} to {rates[-1]:,.0f}) "
                f"| {statistics.median(per):.3f} ({per[0]:.3f} to {per[-1]:.3f}) | {len(walls)} |"
            )
        sys.stdout.flush()
    compression_levels(records)


if __name__ == "__main__":
    asyncio.run(main())
