"""``tribunal report`` on a recorded SQLite file."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from tests.integration.conftest import MakeRecord
from tribunal.cli import main
from tribunal.store import SqlStore


def test_report_writes_the_chosen_format(
    tmp_path: Path, make_record: MakeRecord, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'tribunal.db'}"

    async def fill() -> None:
        async with SqlStore(url) as store:
            await store.record([make_record("c1", privileged=True), make_record("c2", name="ok", minutes=1)])

    asyncio.run(fill())
    out = tmp_path / "report.json"
    assert main(["report", "--framework", "pss-baseline", "--database-url", url, "-o", str(out)]) == 0
    report = json.loads(out.read_text())
    controls = {c["control_id"]: c for c in report["controls"]}
    assert controls["privileged-containers"]["status"] == "fail"
    assert controls["privileged-containers"]["scopes"][0]["failing"][0]["evidence_ids"] == ["c1"]
    assert controls["host-ports"]["status"] == "pass"

    assert (
        main(
            [
                "report",
                "--framework",
                "cis-k8s",
                "--format",
                "sarif",
                "--database-url",
                url,
                "--since",
                "2020-01-01",
            ]
        )
        == 0
    )
    assert json.loads(capsys.readouterr().out)["version"] == "2.1.0"

    assert main(["report", "--framework", "iso-27001", "--database-url", url]) == 1
    assert "iso-27001.yaml: no such framework catalogue" in capsys.readouterr().err
    assert main(["report", "--framework", "cis-k8s", "--since", "soon", "--database-url", url]) == 1
    assert "since: 'soon'" in capsys.readouterr().err
    missing = f"sqlite+aiosqlite:///{tmp_path / 'none.db'}"
    assert main(["report", "--framework", "cis-k8s", "--database-url", missing]) == 1
    assert "does not exist" in capsys.readouterr().err
