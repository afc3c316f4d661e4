"""Settings: defaults < YAML file < TRIBUNAL_* environment < explicit overrides (flags)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from tribunal.settings import Settings


def test_defaults_run_without_any_service(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("TRIBUNAL_ENGINE", "TRIBUNAL_POLICY_DIR", "TRIBUNAL_PORT"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings.load()
    assert (settings.engine, settings.port, settings.policy_dir) == ("regorus", 8443, Path("policies"))
    assert settings.kafka_bootstrap_servers is None
    assert settings.database_url.startswith("sqlite+aiosqlite://")


def test_precedence_file_env_flags(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "tribunal.yaml"
    config.write_text("engine: regopy\nport: 9000\npolicy_dir: /srv/policies\n")
    monkeypatch.setenv("TRIBUNAL_PORT", "9443")
    settings = Settings.load(config, policy_dir=Path("/override"))
    assert settings.engine == "regopy"  # from the file
    assert settings.port == 9443  # the environment beats the file
    assert settings.policy_dir == Path("/override")  # a flag beats both


def test_bad_value_names_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRIBUNAL_ENGINE", "wasm")
    with pytest.raises(ValidationError, match="engine"):
        Settings.load()


def test_cli_reports_bad_settings(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from tribunal.cli import main

    monkeypatch.setenv("TRIBUNAL_ENGINE", "wasm")
    assert main(["judge", "-"]) == 1
    assert (
        "tribunal: invalid settings: engine: Input should be "
        "'regorus', 'regorus-interpreter', 'regopy' or 'opa'" in capsys.readouterr().err
    )


def test_action_settings_nest_under_actions(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRIBUNAL_ACTIONS__STATE_DIR", "/var/lib/tribunal")
    monkeypatch.setenv("TRIBUNAL_ACTIONS__DESTRUCTIVE_PER_MINUTE", "2")
    settings = Settings.load()
    assert settings.actions.state_dir == Path("/var/lib/tribunal")
    assert settings.actions.destructive_per_minute == 2
    assert settings.actions.max_attempts == 4  # the rest keep their defaults
    monkeypatch.setenv("TRIBUNAL_ACTIONS__MAX_ATTEMPTS", "0")
    with pytest.raises(ValidationError, match="max_attempts"):
        Settings.load()


def test_outbox_grace_is_a_nested_actions_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRIBUNAL_ACTIONS__OUTBOX_GRACE_SECONDS", raising=False)
    assert Settings.load().actions.outbox_grace_seconds == 300
    monkeypatch.setenv("TRIBUNAL_ACTIONS__OUTBOX_GRACE_SECONDS", "42.5")
    assert Settings.load().actions.outbox_grace_seconds == 42.5
    monkeypatch.setenv("TRIBUNAL_ACTIONS__OUTBOX_GRACE_SECONDS", "0")
    with pytest.raises(ValidationError, match="outbox_grace_seconds"):
        Settings.load()


def test_the_trivy_operator_watch_takes_known_resources_or_all(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRIBUNAL_TRIVY_OPERATOR_WATCH", "vulnerabilityreports, configauditreports")
    assert Settings.load().trivy_operator_watch == ["vulnerabilityreports", "configauditreports"]
    monkeypatch.setenv("TRIBUNAL_TRIVY_OPERATOR_WATCH", "all")
    assert "clustercompliancereports" in Settings.load().trivy_operator_watch
    monkeypatch.setenv("TRIBUNAL_TRIVY_OPERATOR_WATCH", "vulnerabilityreport")
    with pytest.raises(ValidationError, match="unknown Trivy Operator resources \\['vulnerabilityreport'\\]"):
        Settings.load()
