"""policy_dir and rules_dir default to `bundled`: the library installed with Tribunal, which in a
checkout is the repository's own policies/ and rules/ (issue 25). A folder that is not there is an error
naming the setting, its flag and variable, and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from tribunal.bundled import BUNDLED, bundled_dir
from tribunal.settings import Settings

PROJECT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def no_folder_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRIBUNAL_POLICY_DIR", raising=False)
    monkeypatch.delenv("TRIBUNAL_RULES_DIR", raising=False)


def test_the_default_is_bundled_and_a_checkout_reads_its_own_folders(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # from any folder, not only the repository's root
    assert Settings.model_fields["policy_dir"].default == BUNDLED
    assert Settings.model_fields["rules_dir"].default == BUNDLED
    settings = Settings.load()
    assert settings.policy_dir == bundled_dir("policies") == PROJECT / "policies"
    assert settings.rules_dir == bundled_dir("rules") == PROJECT / "rules"


def test_bundled_can_be_named_and_a_folder_overrides_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRIBUNAL_POLICY_DIR", str(tmp_path))
    monkeypatch.setenv("TRIBUNAL_RULES_DIR", "bundled")
    settings = Settings.load()
    assert settings.policy_dir == tmp_path
    assert settings.rules_dir == PROJECT / "rules"
    assert Settings.load(policy_dir=Path("bundled")).policy_dir == PROJECT / "policies"  # as a flag gives it


@pytest.mark.parametrize(
    ("field", "flag", "variable", "what"),
    [
        ("policy_dir", "--policies", "TRIBUNAL_POLICY_DIR", "policies"),
        ("rules_dir", "--rules", "TRIBUNAL_RULES_DIR", "rules"),
    ],
)
def test_a_missing_folder_names_the_setting_and_the_fix(
    tmp_path: Path, field: str, flag: str, variable: str, what: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        Settings.load(**{field: tmp_path / "nowhere"})
    (error,) = caught.value.errors()
    assert error["loc"] == (field,)
    message = error["msg"]
    assert f"{tmp_path / 'nowhere'}: no such folder" in message
    assert flag in message and variable in message
    assert f"leave the setting out to use the {what} installed with Tribunal (bundled)" in message

    (tmp_path / "file").write_text("")
    with pytest.raises(ValidationError, match="is a file, not a folder"):
        Settings.load(**{field: tmp_path / "file"})
