"""TRIBUNAL_EVIDENCE_REDACTION: read from the environment, checked, and handed to the store."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from tribunal.app import build_store
from tribunal.model.redact import Redaction
from tribunal.settings import Settings
from tribunal.store import SqlStore
from tribunal.store.raw import RawCodec
from tribunal.store.write import RecordWriter


def test_the_default_redacts_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRIBUNAL_EVIDENCE_REDACTION", raising=False)
    assert Settings.load().evidence_redaction is Redaction.SECRETS
    assert SqlStore("sqlite+aiosqlite://").redaction is Redaction.SECRETS


@pytest.mark.parametrize("value", ["secrets", "all-env", "none"])
def test_the_setting_reaches_the_store(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("TRIBUNAL_EVIDENCE_REDACTION", value)
    settings = Settings.load()
    assert settings.evidence_redaction == value
    assert build_store(settings).redaction == value


def test_an_unknown_value_is_refused_with_the_settings_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRIBUNAL_EVIDENCE_REDACTION", "some")
    with pytest.raises(ValidationError, match="evidence_redaction"):
        Settings.load()
    with pytest.raises(ValueError, match="some"):
        SqlStore("sqlite+aiosqlite://", redaction="some")
    with pytest.raises(ValueError, match="some"):
        RecordWriter("sqlite", RawCodec(), "some")
