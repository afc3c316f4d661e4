"""`tribunal consume` refuses to run without brokers and exits 1 when it cannot reach them."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import POLICY_DIR, RULES_DIR
from tests.integration.conftest import free_port
from tribunal.cli import main


def test_consume_needs_brokers(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("TRIBUNAL_KAFKA_BOOTSTRAP_SERVERS", raising=False)
    assert main(["consume"]) == 1
    assert "TRIBUNAL_KAFKA_BOOTSTRAP_SERVERS" in capsys.readouterr().err


def test_consume_exits_1_when_the_brokers_cannot_be_reached(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("TRIBUNAL_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'tribunal.db'}")
    monkeypatch.setenv("TRIBUNAL_ACTIONS__STATE_DIR", str(tmp_path / "state"))
    argv = ["consume", "--bootstrap-servers", f"127.0.0.1:{free_port()}", "--workers", "0"]
    argv += ["--policies", str(POLICY_DIR), "--rules", str(RULES_DIR)]
    assert main(argv) == 1
    assert "cannot start the Kafka consumer" in caplog.text
