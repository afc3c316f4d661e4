"""Settings: defaults < YAML file < TRIBUNAL_* environment < explicit overrides (flags)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from tribunal.bundled import bundled_dir
from tribunal.settings import Settings


def test_defaults_run_without_any_service(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("TRIBUNAL_ENGINE", "TRIBUNAL_POLICY_DIR", "TRIBUNAL_PORT"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings.load()
    assert (settings.engine, settings.port) == ("regorus", 8443)
    assert settings.policy_dir == bundled_dir("policies")  # `bundled`: in a checkout, its policies/
    assert settings.kafka_bootstrap_servers is None
    assert settings.database_url.startswith("sqlite+aiosqlite://")


def test_precedence_file_env_flags(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "tribunal.yaml"
    config.write_text(f"engine: regopy\nport: 9000\npolicy_dir: {tmp_path / 'file'}\n")
    monkeypatch.setenv("TRIBUNAL_PORT", "9443")
    (tmp_path / "override").mkdir()
    settings = Settings.load(config, policy_dir=tmp_path / "override")
    assert settings.engine == "regopy"  # from the file
    assert settings.port == 9443  # the environment beats the file
    assert settings.policy_dir == tmp_path / "override"  # a flag beats both


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


def test_a_flag_setting_one_key_of_a_section_keeps_the_others_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("TRIBUNAL_ACTIONS__KUBECONFIG", str(tmp_path / "kubeconfig"))
    monkeypatch.setenv("TRIBUNAL_AUTH__READ_TOKEN", "r34d")
    settings = Settings.load(actions={"state_dir": tmp_path / "state"}, auth={"anonymous": True})
    assert settings.actions.kubeconfig == tmp_path / "kubeconfig"
    assert settings.actions.state_dir == tmp_path / "state"
    assert settings.auth.anonymous and settings.auth.read_token is not None
    assert "r34d" not in repr(settings) and "r34d" not in str(settings.model_dump())


async def test_cluster_actions_off_skip_without_reading_any_kubeconfig(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from tribunal.actions import KubeConnector
    from tribunal.actions.base import ActionSkipped
    from tribunal.settings import ActionSettings

    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.kube/config: reading one would fail differently
    with pytest.raises(ActionSkipped, match="cluster actions are off"):
        await KubeConnector(ActionSettings(cluster=False)).client()


@pytest.mark.parametrize(
    ("env", "acts"),
    [
        ({}, False),  # ~/.kube/config alone never makes `tribunal dev` act on a cluster
        ({"TRIBUNAL_ACTIONS__KUBECONFIG": "/k"}, True),
        ({"TRIBUNAL_ACTIONS__KUBE_API_URL": "http://127.0.0.1:8001"}, True),
        ({"TRIBUNAL_ACTIONS__CLUSTER": "true"}, True),
        ({"TRIBUNAL_ACTIONS__CLUSTER": "false", "TRIBUNAL_ACTIONS__KUBECONFIG": "/k"}, False),
    ],
)
def test_dev_acts_on_a_cluster_only_when_one_is_named(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], acts: bool
) -> None:
    from tribunal import cli

    for name in (
        "TRIBUNAL_ACTIONS__KUBECONFIG",
        "TRIBUNAL_ACTIONS__KUBE_API_URL",
        "TRIBUNAL_ACTIONS__CLUSTER",
    ):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert cli._dev_acts_on_cluster() is acts
