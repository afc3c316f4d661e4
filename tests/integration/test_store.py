"""The SQL store on SQLite and on the machine's PostgreSQL: idempotent writes, findings, migrations
from the first schema, two writer processes, queries with pagination, retention."""

from __future__ import annotations

import asyncio
import itertools
import random
import sys
import threading
import zlib
from collections import Counter
from datetime import timedelta
from enum import Enum

import pytest
from sqlalchemy import MetaData, func, select, text

from tests.conftest import PROJECT
from tests.integration.conftest import T0, MakeRecord
from tests.integration.legacy_migrations import violations_v1
from tests.integration.store_writer import numbered_record
from tribunal.model import Decision, Enforcement, Severity, Violation
from tribunal.store import (
    SCHEMA_VERSION,
    FindingQuery,
    FindingStatus,
    Record,
    SqlStore,
    StoreError,
    VerdictQuery,
    create_store_engine,
    migrate,
    schema_version_of,
    write,
)
from tribunal.store import schema as tables


async def test_rewriting_the_same_evidence_changes_nothing(
    database_url: str, make_record: MakeRecord
) -> None:
    records = [make_record(f"u{i}", name=f"p{i % 2}", privileged=i % 2 == 0, minutes=i) for i in range(6)]
    async with SqlStore(database_url) as store:
        await store.record(records)
        before = await store.counts()
        findings_before = (await store.findings(FindingQuery(limit=1000))).items
        await store.record(records[::-1])  # redelivered, in another order
        await store.record([records[2], records[2], records[4]])  # and duplicated within a batch
        after = await store.counts()
        findings_after = (await store.findings(FindingQuery(limit=1000))).items
        activity = await store.activity()
    assert before == after
    assert before["evidence"] == before["verdicts"] == 6
    assert findings_before == findings_after
    assert sum(a.verdicts for a in activity) == 6


async def test_a_finding_opens_resolves_and_reopens(database_url: str, make_record: MakeRecord) -> None:
    async with SqlStore(database_url) as store:
        await store.record([make_record("a1", privileged=True, minutes=0)])
        (opened,) = (await store.findings(FindingQuery(policy=["privileged_containers"]))).items
        await store.record([make_record("a2", privileged=False, minutes=5)])
        (resolved,) = (await store.findings(FindingQuery(policy=["privileged_containers"]))).items
        # A verdict older than the latest one arrives late: it counts, but does not reopen.
        await store.record([make_record("a0", privileged=True, minutes=-5)])
        (late,) = (await store.findings(FindingQuery(policy=["privileged_containers"]))).items
        # Nor does one older than the resolving verdict, though newer than the last violation.
        await store.record([make_record("a1b", privileged=True, minutes=2)])
        (between,) = (await store.findings(FindingQuery(policy=["privileged_containers"]))).items
        await store.record([make_record("a3", privileged=True, minutes=10)])
        (reopened,) = (await store.findings(FindingQuery(policy=["privileged_containers"]))).items
    assert opened.status is FindingStatus.OPEN and opened.count == 1
    assert opened.subject_key == "shop/Pod/web" and opened.first_evidence_id == "a1"
    assert "pss-baseline:privileged-containers" in opened.controls
    assert resolved.status is FindingStatus.RESOLVED and resolved.resolved_at == T0 + timedelta(minutes=5)
    assert late.status is FindingStatus.RESOLVED and late.count == 2
    assert late.first_seen == T0 - timedelta(minutes=5) and late.first_evidence_id == "a0"
    assert between.status is FindingStatus.RESOLVED and between.count == 3
    assert between.resolved_at == T0 + timedelta(minutes=5) and between.last_evidence_id == "a1b"
    assert reopened.status is FindingStatus.OPEN and reopened.count == 4
    assert reopened.last_evidence_id == "a3" and reopened.resolved_at is None


async def test_an_excepted_violation_makes_an_excepted_finding(
    database_url: str, make_record: MakeRecord
) -> None:
    record = make_record("e1", privileged=True)
    violations = [
        v.model_copy(update={"exception": "ticket SEC-12"}) if v.policy == "privileged_containers" else v
        for v in record.verdict.violations
    ]
    excepted = Record(record.evidence, record.verdict.model_copy(update={"violations": violations}))
    async with SqlStore(database_url) as store:
        await store.record([excepted])
        (finding,) = (await store.findings(FindingQuery(policy=["privileged_containers"]))).items
    assert finding.status is FindingStatus.EXCEPTED and finding.exception == "ticket SEC-12"


async def test_verdicts_page_newest_first_with_filters(database_url: str, make_record: MakeRecord) -> None:
    records = [
        make_record(f"v{i:02d}", name=f"p{i % 3}", privileged=i % 4 == 0, minutes=i) for i in range(23)
    ]
    async with SqlStore(database_url) as store:
        await store.record(records)
        seen, cursor = [], None
        while True:
            page = await store.verdicts(VerdictQuery(limit=10, cursor=cursor))
            seen += [v.evidence_id for v in page.items]
            cursor = page.next_cursor
            if cursor is None:
                break
        denied = await store.verdicts(VerdictQuery(decision=Decision.DENY, limit=100))
        by_policy = await store.verdicts(VerdictQuery(policy="privileged_containers", limit=100))
        one = await store.verdicts(VerdictQuery(subject="shop/Pod/p1", limit=100))
        window = await store.verdicts(
            VerdictQuery(since=T0 + timedelta(minutes=5), until=T0 + timedelta(minutes=8), limit=100)
        )
        other_ns = await store.verdicts(VerdictQuery(namespace="elsewhere"))
        with pytest.raises(StoreError, match="cursor"):
            await store.verdicts(VerdictQuery(cursor="bm90LWEtY3Vyc29y"))
    assert seen == [f"v{i:02d}" for i in reversed(range(23))]
    assert {v.evidence_id for v in denied.items} == {f"v{i:02d}" for i in range(0, 23, 4)}
    assert all(any(x.policy == "privileged_containers" for x in v.violations) for v in by_policy.items)
    assert len(by_policy.items) == 6
    assert {v.subject_key for v in one.items} == {"shop/Pod/p1"} and len(one.items) == 8
    assert [v.evidence_id for v in window.items] == ["v07", "v06", "v05"]
    assert other_ns.items == []


async def test_findings_page_and_filter(database_url: str, make_record: MakeRecord) -> None:
    records = [make_record(f"f{i}", name=f"p{i}", privileged=True, minutes=i) for i in range(7)]
    async with SqlStore(database_url) as store:
        await store.record(records)
        await store.record([make_record("f9", name="p0", privileged=False, minutes=30)])
        pages, cursor = [], None
        while True:
            page = await store.findings(
                FindingQuery(policy=["privileged_containers"], limit=3, cursor=cursor)
            )
            pages.append([f.subject_key for f in page.items])
            if (cursor := page.next_cursor) is None:
                break
        open_ = await store.findings(
            FindingQuery(policy=["privileged_containers"], status=FindingStatus.OPEN)
        )
        resolved = await store.findings(FindingQuery(status=FindingStatus.RESOLVED))
    assert [len(p) for p in pages] == [3, 3, 1]
    assert len({k for p in pages for k in p}) == 7
    assert len(open_.items) == 6
    assert {f.subject_key for f in resolved.items} == {"shop/Pod/p0"}


async def test_raw_bodies_are_zstd_and_the_zlib_ones_of_earlier_versions_still_read(
    database_url: str, make_record: MakeRecord
) -> None:
    async with SqlStore(database_url) as store:
        await store.record([make_record("new", minutes=0), make_record("legacy", minutes=1)])
        async with store.engine.begin() as conn:
            stored = (
                await conn.execute(select(tables.evidence.c.raw).where(tables.evidence.c.id == "new"))
            ).scalar()
            # As versions before zstd wrote it.
            await conn.execute(
                tables.evidence.update()
                .where(tables.evidence.c.id == "legacy")
                .values(raw=zlib.compress(b'{"doc": "legacy"}', 1))
            )
        new, legacy = await store.get_evidence("new"), await store.get_evidence("legacy")
    assert bytes(stored)[:4] == b"\x28\xb5\x2f\xfd"  # a zstd frame
    assert new is not None and new.raw == b'{"doc": "new"}'
    assert legacy is not None and legacy.raw == b'{"doc": "legacy"}'


async def test_retention_prunes_raw_evidence_but_keeps_findings(
    database_url: str, make_record: MakeRecord
) -> None:
    old = make_record("old", privileged=True, minutes=0)
    async with SqlStore(database_url) as store:
        await store.record([old])
        assert (await store.get_evidence("old")).raw == b'{"doc": "old"}'  # type: ignore[union-attr]
    # Recorded at T0 (2025): far older than a 30-day retention when the store starts again.
    async with SqlStore(database_url, retention=timedelta(days=30)) as store:
        counts = await store.counts()
        stored = await store.get_evidence("old")
        findings = (await store.findings(FindingQuery())).items
        await store.record([old])  # still known: redelivery of pruned evidence changes nothing
        again = await store.counts()
    assert counts["raw_kept"] == 0 and counts["evidence"] == 1 and counts["verdicts"] == 1
    assert stored is not None and stored.raw is None and stored.pruned_at is not None
    assert {f.policy for f in findings} >= {"privileged_containers"}
    assert again == counts


async def test_upgrade_from_the_first_schema_keeps_the_record(
    database_url: str, make_record: MakeRecord
) -> None:
    engine = create_store_engine(database_url)
    try:
        assert await migrate(engine, target=1) == [1]
        # What a Tribunal at schema 1 left behind: one denied verdict and its (since resolved) finding.
        async with engine.begin() as conn:
            await conn.execute(
                tables.evidence.insert().values(
                    id="v1-ev", kind="admission", received_at=T0, source="old", subject_key="shop/Pod/web",
                    namespace="shop", subject='{"namespace":"shop"}', raw=None, raw_size=0,
                )
            )  # fmt: skip
            await conn.execute(
                tables.verdicts.insert().values(
                    evidence_id="v1-ev", kind="admission", subject_key="shop/Pod/web", namespace="shop",
                    decision="deny", policy_revision="r1", engine="regorus", received_at=T0,
                    evaluated_at=T0, latency_ms=0.2,
                )
            )  # fmt: skip
            for n, policy in enumerate(["privileged_containers", "host_path"]):  # kept in this order
                await conn.execute(
                    violations_v1(MetaData()).insert().values(
                        evidence_id="v1-ev", policy=policy, severity="high", enforcement="deny",
                        msg=f"m{n}", controls='["cis-k8s:5.2.1"]', details='{"container": "c"}',
                    )
                )  # fmt: skip
            await conn.execute(
                text(
                    "INSERT INTO findings (policy, subject_key, kind, namespace, subject, severity, status, "
                    "first_seen, last_seen, count, first_evidence_id, last_evidence_id, msg, controls, "
                    "last_judged) VALUES ('host_ports', 'shop/Pod/web', 'admission', 'shop', '{}', 'high', "
                    "'resolved', :t, :t, 1, 'v1-ev', 'v1-ev', 'm', '[]', :t)"
                ),
                {"t": T0.replace(tzinfo=None) if engine.dialect.name == "sqlite" else T0},
            )
        assert await schema_version_of(engine) == 1
    finally:
        await engine.dispose()

    async with SqlStore(database_url) as store:
        assert await schema_version_of(store.engine) == SCHEMA_VERSION == 5
        (ported,) = (await store.findings(FindingQuery(policy=["host_ports"]))).items
        backfilled = await store.activity()
        await store.record([make_record("new", privileged=True, minutes=60)])
        activity = await store.activity()
        daily = await store.daily_violations(["privileged_containers"])
        (privileged,) = (await store.findings(FindingQuery(policy=["privileged_containers"]))).items
        verdicts = (await store.verdicts(VerdictQuery())).items
        by_policy = (await store.verdicts(VerdictQuery(policy="host_path"))).items
        counts = await store.counts()
        assert await store.record_to_act([make_record("outbox", minutes=61)]) == ["outbox"]  # v3 table
    assert ported.status is FindingStatus.RESOLVED and ported.resolved_at == T0
    assert [(a.day, a.namespace, a.verdicts, a.denied) for a in backfilled] == [(T0.date(), "shop", 1, 1)]
    assert [(a.day, a.namespace, a.verdicts, a.denied) for a in activity] == [(T0.date(), "shop", 2, 2)]
    assert [(d.day, d.violations) for d in daily] == [(T0.date(), 2)]
    assert privileged.status is FindingStatus.OPEN and privileged.first_evidence_id == "new"
    assert [v.evidence_id for v in verdicts] == ["new", "v1-ev"]
    # v4: the violations rows moved into their verdict's row, in order, with their JSON read back.
    old = verdicts[1].violations
    assert [(x.policy, x.msg, x.severity, x.enforcement) for x in old] == [
        ("privileged_containers", "m0", Severity.HIGH, Enforcement.DENY),
        ("host_path", "m1", Severity.HIGH, Enforcement.DENY),
    ]
    assert old[0].controls == ["cis-k8s:5.2.1"] and old[0].details == {"container": "c"}
    assert old[0].exception is None
    assert [v.evidence_id for v in by_policy] == ["v1-ev"]
    assert counts["violations"] == 2 + len(verdicts[0].violations)


async def test_migrating_twice_applies_nothing_and_a_newer_schema_is_refused(database_url: str) -> None:
    engine = create_store_engine(database_url)
    try:
        assert await migrate(engine) == [1, 2, 3, 4, 5]
        assert await migrate(engine) == []
        async with engine.begin() as conn:
            await conn.execute(
                tables.schema_version.insert().values(version=99, description="future", applied_at=T0)
            )
        with pytest.raises(StoreError, match="schema version 99 is newer"):
            await migrate(engine)
    finally:
        await engine.dispose()


async def test_two_writer_processes_record_overlapping_evidence_once(database_url: str) -> None:
    async with SqlStore(database_url):
        pass  # migrate first, as `tribunal serve` does before its replicas write
    ranges = [(0, 160), (60, 220)]  # 100 pieces of evidence written by both
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tests.integration.store_writer", database_url, str(a), str(b), cwd=PROJECT
        )
        for a, b in ranges
    ]
    assert [await p.wait() for p in procs] == [0, 0]

    from tests.conftest import POLICY_DIR
    from tests.integration.conftest import make_record_with
    from tribunal.policy import Judge, load_policy_set

    build = make_record_with(Judge.build(load_policy_set(POLICY_DIR)))
    expected = [numbered_record(build, i) for i in range(220)]
    want_counts: Counter[tuple[str, str]] = Counter()
    for r in expected:
        for policy in {v.policy for v in r.verdict.violations}:
            want_counts[(policy, r.evidence.subject.key())] += 1
    latest = {r.evidence.subject.key(): r for r in expected}  # in time order: the last one wins

    async with SqlStore(database_url) as store:
        counts = await store.counts()
        findings = (await store.findings(FindingQuery(limit=1000))).items
        async with store.engine.connect() as conn:
            rolled = (await conn.execute(select(func.sum(tables.daily_activity.c.verdicts)))).scalar_one()
    assert counts["evidence"] == counts["verdicts"] == 220
    assert rolled == 220
    assert {(f.policy, f.subject_key): f.count for f in findings} == dict(want_counts)
    for f in findings:
        still = any(v.policy == f.policy for v in latest[f.subject_key].verdict.violations)
        assert f.status is (FindingStatus.OPEN if still else FindingStatus.RESOLVED), f


def _violations(rng: random.Random) -> list[Violation]:
    """Zero to three violations of policies p1..p3 (a policy sometimes twice), some excepted."""
    out = []
    for policy in rng.sample(["p1", "p2", "p3", "p1"], rng.randint(0, 3)):
        out.append(
            Violation(
                policy=policy,
                msg=f"{policy} says {rng.randint(0, 9)}",
                severity=rng.choice(list(Severity)),
                controls=rng.sample(["c1", "c2", "c3"], rng.randint(1, 2)),
                exception=rng.choice([None, None, "ticket-1", "ticket-2"]),
            )
        )
    return out


def _fold(batches: list[list[Record]]) -> dict[tuple[str, str], dict[str, object]]:
    """What the findings should be: each batch's verdicts taken one by one, oldest first."""
    found: dict[tuple[str, str], dict[str, object]] = {}
    for batch in batches:
        for r in sorted(batch, key=lambda r: (r.received_at, r.evidence_id)):
            v, t, eid = r.verdict, r.received_at, r.evidence_id
            key, kind = v.subject.key(), v.kind.value
            by_policy: dict[str, list[Violation]] = {}
            for x in v.violations:
                by_policy.setdefault(x.policy, []).append(x)
            for policy, xs in by_policy.items():
                state = {
                    "status": "excepted" if all(x.exception for x in xs) else "open",
                    "msg": xs[0].msg,
                    "severity": max((x.severity for x in xs), key=lambda s: s.rank).value,
                    "controls": sorted({c for x in xs for c in x.controls}),
                    "exception": next((x.exception for x in xs if x.exception), None),
                    "last_evidence_id": eid,
                }
                f = found.get((policy, key))
                if f is None:
                    f = found[(policy, key)] = {
                        "kind": kind, "first_seen": t, "first_evidence_id": eid, "last_seen": t,
                        "count": 0, "last_judged": t, "resolved_at": None, **state,
                    }  # fmt: skip
                else:
                    if t < f["first_seen"]:  # type: ignore[operator]
                        f["first_seen"], f["first_evidence_id"] = t, eid
                    if t >= f["last_seen"]:  # type: ignore[operator]
                        f["last_seen"], f["last_evidence_id"] = t, eid
                    if t >= f["last_seen"] and t >= f["last_judged"]:  # type: ignore[operator]
                        f.update(state, resolved_at=None)
                f["count"] += 1  # type: ignore[operator]
            for (policy, k), f in found.items():
                if k != key or f["kind"] != kind:
                    continue
                f["last_judged"] = max(f["last_judged"], t)  # type: ignore[type-var]
                if policy not in by_policy and f["status"] != "resolved" and t > f["last_seen"]:  # type: ignore[operator]
                    f["status"], f["resolved_at"] = "resolved", t
    return found


@pytest.mark.parametrize("seed", range(3))
async def test_findings_match_the_verdicts_taken_one_by_one(
    database_url: str, make_record: MakeRecord, seed: int
) -> None:
    """Random histories on three pods (late and same-time verdicts, repeated and excepted policies,
    batches of 1 to 40) give the findings that taking every verdict in turn gives."""
    rng = random.Random(seed)
    batches: list[list[Record]] = []
    n = 0
    for _ in range(12):
        batch = []
        for _ in range(rng.randint(1, 40)):
            base = make_record(
                f"s{seed}-{n:04d}", name=f"web-{rng.randint(0, 2)}", minutes=rng.randint(0, 60)
            )
            n += 1
            verdict = base.verdict.model_copy(update={"violations": _violations(rng)})
            batch.append(Record(base.evidence, verdict, raw=base.raw))
        batches.append(batch)
    async with SqlStore(database_url) as store:
        for batch in batches:
            await store.record(batch)
        stored = {
            (f.policy, f.subject_key): f for f in (await store.findings(FindingQuery(limit=1000))).items
        }
    want = _fold(batches)
    assert stored.keys() == want.keys()
    for k, f in stored.items():
        got = f.model_dump(include=set(want[k]) - {"kind"})
        got = {name: value.value if isinstance(value, Enum) else value for name, value in got.items()}
        assert got == {name: value for name, value in want[k].items() if name != "kind"}, k


def test_the_write_path_covers_every_column() -> None:
    from tribunal.store import write

    for table, columns in [
        (tables.evidence, write.EVIDENCE_COLUMNS),
        (tables.verdicts, write.VERDICT_COLUMNS),
        (tables.actions, write.ACTION_COLUMNS),
        (tables.findings, write.FINDING_COLUMNS),
        (tables.daily_activity, write.ACTIVITY_COLUMNS),
        (tables.daily_violations, write.DAILY_VIOLATION_COLUMNS),
    ]:
        expected = [c.name for c in table.columns if not (c.primary_key and c.autoincrement is True)]
        assert sorted(columns) == sorted(expected), table.name


async def test_sqlite_keeps_the_value_formats_sqlalchemy_writes(tmp_path, make_record: MakeRecord) -> None:  # type: ignore[no-untyped-def]
    """The write path skips SQLAlchemy's bind processing: what it stores must be what the column
    types would have stored (reads, reports and migrations parse it)."""
    from datetime import UTC, datetime, timezone

    url = f"sqlite+aiosqlite:///{tmp_path / 'formats.db'}"
    plus_two = timezone(timedelta(hours=2))
    times = [
        datetime(2025, 3, 1, 11, 0, tzinfo=plus_two),  # no microseconds, not UTC
        datetime(2025, 3, 1, 9, 30, 0, 250),  # naive: taken as UTC
        datetime(2025, 3, 1, 9, 45, 1, 123456, tzinfo=UTC),
    ]
    records = []
    for i, at in enumerate(times):
        r = make_record(f"fmt-{i}", privileged=True)
        records.append(Record(r.evidence.model_copy(update={"received_at": at}), r.verdict, r.raw))
    async with SqlStore(url) as store:
        await store.record(records)
        dialect = store.engine.dialect
        as_stored = tables.evidence.c.received_at.type.dialect_impl(dialect).bind_processor(dialect)
        day = tables.daily_activity.c.day.type.dialect_impl(dialect).bind_processor(dialect)
        async with store.engine.connect() as conn:
            stored = (
                await conn.exec_driver_sql(
                    "SELECT received_at, typeof(received_at), typeof(raw) FROM evidence ORDER BY id"
                )
            ).all()
            finding = (
                await conn.exec_driver_sql(
                    "SELECT first_seen, last_seen, last_judged FROM findings WHERE policy = 'privileged_containers'"
                )
            ).one()
            days = (await conn.exec_driver_sql("SELECT day, typeof(day) FROM daily_activity")).all()
    assert as_stored is not None and day is not None
    expected = [as_stored(tables.evidence.c.received_at.type.process_bind_param(t, dialect)) for t in times]
    assert [row[0] for row in stored] == expected
    assert expected[0] == "2025-03-01 09:00:00.000000"
    assert {(row[1], row[2]) for row in stored} == {("text", "blob")}
    assert finding == (expected[0], expected[2], expected[2])
    assert days == [(day(times[2].date()), "text")]


async def test_the_action_outbox_hands_back_what_was_recorded_but_never_acted_on(
    database_url: str, make_record: MakeRecord
) -> None:
    first = [make_record(f"o{i}", name=f"p{i}", minutes=i) for i in range(3)]
    async with SqlStore(database_url) as store:
        assert await store.record_to_act(first) == ["o0", "o1", "o2"]  # new: act on them
        # Redelivered before the actions settled (the consumer died in between): act on them again.
        assert await store.record_to_act(first) == ["o0", "o1", "o2"]
        await store.settle_actions(["o0", "o2"])
        later = [*first, make_record("o3", name="p3", minutes=3)]
        assert await store.record_to_act(later) == ["o3", "o1"]  # the new one, then the unsettled one
        await store.settle_actions(["o1", "o3"])
        assert await store.record_to_act(later) == []  # every action settled: never again
        assert (await store.counts())["evidence"] == 4  # recorded once each, whatever was redelivered


async def test_a_large_batch_lets_the_event_loop_turn_every_few_records(
    database_url: str, make_record: MakeRecord, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The write shares the loop with the webhook: between two turns of the loop it builds the rows
    of at most ``PACE`` records (evidence) and ``4 * PACE`` findings, however large the batch."""
    built = {"evidence": 0, "findings": 0}
    evidence_row, finding_row = write.RecordWriter._evidence_row, write._Finding.row

    def counting_evidence_row(self: write.RecordWriter, item: write._Item) -> tuple[object, ...]:
        built["evidence"] += 1
        return evidence_row(self, item)

    def counting_finding_row(self: write._Finding, time: object) -> tuple[object, ...]:
        built["findings"] += 1
        return finding_row(self, time)  # type: ignore[arg-type]

    monkeypatch.setattr(write.RecordWriter, "_evidence_row", counting_evidence_row)
    monkeypatch.setattr(write._Finding, "row", counting_finding_row)
    records = [
        make_record(f"big{i}", name=f"p{i}", privileged=True, minutes=i) for i in range(5 * write.PACE)
    ]
    seen: list[tuple[int, int]] = []

    async def ticker() -> None:
        while True:
            seen.append((built["evidence"], built["findings"]))
            await asyncio.sleep(0)

    async with SqlStore(database_url) as store:
        task = asyncio.create_task(ticker())
        await store.record(records)
        task.cancel()
    assert built["evidence"] == len(records) and built["findings"] >= len(records)
    steps = list(itertools.pairwise(seen))
    assert max(b[0] - a[0] for a, b in steps) <= write.PACE
    assert max(b[1] - a[1] for a, b in steps) <= 4 * write.PACE


def _thread_nice_values() -> dict[int, int]:
    """The nice value of each thread of this process (Linux: field 19 of /proc/self/task/*/stat)."""
    from pathlib import Path

    values = {}
    for stat in Path("/proc/self/task").glob("*/stat"):
        try:
            values[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[16])
        except (OSError, ValueError, IndexError):
            continue
    return values


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice values are Linux's")
async def test_sqlite_connection_threads_run_below_the_event_loop(tmp_path, make_record: MakeRecord) -> None:  # type: ignore[no-untyped-def]
    url = f"sqlite+aiosqlite:///{tmp_path / 'nice.db'}"
    main = threading.get_native_id()
    base = _thread_nice_values()[main]
    before = set(_thread_nice_values())
    async with SqlStore(url, thread_nice=7) as store:
        await store.record([make_record("n1", privileged=True)])
        lowered = {tid: nice for tid, nice in _thread_nice_values().items() if tid not in before}
        assert (await store.counts())["verdicts"] == 1
    assert lowered and set(lowered.values()) == {min(19, base + 7)}  # aiosqlite's connection threads
    assert _thread_nice_values()[main] == base  # the event loop's thread keeps its priority

    before = set(_thread_nice_values())
    async with SqlStore(f"sqlite+aiosqlite:///{tmp_path / 'same.db'}") as store:
        await store.record([make_record("n2")])
        same = {tid: nice for tid, nice in _thread_nice_values().items() if tid not in before}
    assert same and set(same.values()) == {base}
