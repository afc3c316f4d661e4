"""Evidence carrying NUL characters (a Falco command line, a hostile review) is recorded on every
store: PostgreSQL's text cannot hold NUL, so its string parameters have NUL replaced by U+FFFD; the
raw evidence (bytes) keeps it as sent."""

from __future__ import annotations

import orjson

from tests.conftest import falco_alert
from tribunal.model import parse_evidence
from tribunal.policy import Judge
from tribunal.store import Record, SqlStore, VerdictQuery
from tribunal.store.sql import NUL_REPLACEMENT, without_nul


def test_without_nul_reaches_into_rows_and_leaves_bytes() -> None:
    rows = [("a\x00b", b"raw\x00", 3, {"k": ["x\x00"]}), ("clean", None, 1.5, {})]
    assert without_nul(rows) == [
        (f"a{NUL_REPLACEMENT}b", b"raw\x00", 3, {"k": [f"x{NUL_REPLACEMENT}"]}),
        ("clean", None, 1.5, {}),
    ]


async def test_a_falco_alert_with_nul_characters_is_recorded_and_read_back(
    database_url: str, judge: Judge
) -> None:
    alert = falco_alert(
        uuid="5b6f3c1e-1111-4a4a-9c9c-00000000d000",
        output="A shell was spawned: bash -c 'printf \x00'",
        output_fields={
            **falco_alert()["output_fields"],
            "proc.cmdline": "bash -c \x00\x00",
            "k8s.ns.name": "sh\x00p",
        },
    )
    raw = orjson.dumps(alert)
    evidence = parse_evidence(orjson.loads(raw), "POST /ingest/falco from \x00")
    record = Record(evidence, judge.judge(evidence), raw)
    async with SqlStore(database_url) as store:
        await store.record([record])
        stored = await store.get_evidence(record.evidence_id)
        assert stored is not None and stored.raw is not None
        assert orjson.loads(stored.raw)["output_fields"]["proc.cmdline"] == "bash -c \x00\x00"
        page = await store.verdicts(VerdictQuery(limit=10, namespace="sh\x00p"))
        [verdict] = page.items
        assert verdict.evidence_id == record.evidence_id and verdict.decision == record.verdict.decision
