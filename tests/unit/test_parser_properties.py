"""Property tests (hypothesis) of the small text parsers: list settings (comma-separated or a JSON
list, from the environment), Kafka topic lists, ``since``/``until`` of the read API and reports, and
the read API's page cursors. Whatever the text, each gives its value or its documented error
(ValueError / a ValidationError naming the setting; StoreError for a cursor), never another one."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest import mock

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from tests.unit.model.json_strategies import FAST, fast, json_values
from tribunal.model.trivy import OPERATOR_REPORT_PLURALS
from tribunal.reports.builder import parse_since
from tribunal.settings import TOPIC_KINDS, Settings, parse_topics
from tribunal.store import StoreError
from tribunal.store.queries import decode_cursor, encode_cursor

# (environment variable, where the value lands, what it must be one of; None: any name)
LIST_SETTINGS: list[tuple[str, tuple[str, ...], tuple[str, ...] | None]] = [
    ("TRIBUNAL_EXEMPT_NAMESPACES", ("exempt_namespaces",), None),
    ("TRIBUNAL_EXEMPT_USERS", ("exempt_users",), None),
    ("TRIBUNAL_EXEMPT_GROUPS", ("exempt_groups",), None),
    ("TRIBUNAL_TRIVY_OPERATOR_WATCH", ("trivy_operator_watch",), (*OPERATOR_REPORT_PLURALS, "all")),
    ("TRIBUNAL_AUTH__AUDIENCES", ("auth", "audiences"), None),
    ("TRIBUNAL_ACTIONS__NAMESPACES", ("actions", "namespaces"), None),
    (
        "TRIBUNAL_ACTIONS__CLUSTER_ACTIONS",
        ("actions", "cluster_actions"),
        ("annotate", "label", "event", "quarantine", "terminate"),
    ),
]
NAMES = st.text(st.characters(exclude_characters=",\x00", exclude_categories=["Cs"]), max_size=12)
ENV_TEXT = st.text(st.characters(exclude_characters="\x00", exclude_categories=["Cs"]), max_size=40)


def _from_env(variable: str, value: str) -> Settings | ValidationError:
    with mock.patch.dict(os.environ, {variable: value}):
        try:
            return Settings()
        except ValidationError as exc:
            return exc


def _value(settings: Settings, where: tuple[str, ...]) -> Any:
    node: Any = settings
    for name in where:
        node = getattr(node, name)
    return node


@pytest.mark.parametrize(("variable", "where", "allowed"), LIST_SETTINGS, ids=lambda v: str(v))
@fast(60)
@given(names=st.lists(NAMES, max_size=5), text=ENV_TEXT)
def test_list_settings_read_commas_or_a_json_list_and_refuse_nothing_else_but_by_name(
    variable: str, where: tuple[str, ...], allowed: tuple[str, ...] | None, names: list[str], text: str
) -> None:
    expected = [n.strip() for n in names if n.strip()]
    as_json = _from_env(variable, json.dumps(expected))
    if not (expected and expected[0].startswith("[")):  # else the comma form reads as JSON
        comma = _from_env(variable, ", ".join(names))
        # The two spellings mean the same: the same value, or both refused.
        if isinstance(as_json, ValidationError):
            assert isinstance(comma, ValidationError)
        else:
            assert not isinstance(comma, ValidationError), comma
            assert _value(comma, where) == _value(as_json, where)
    if allowed is None:
        assert not isinstance(as_json, ValidationError), as_json
        assert _value(as_json, where) == expected
    # Any text at all: the setting's value, or a ValidationError naming the setting.
    for outcome in (_from_env(variable, text), as_json):
        if isinstance(outcome, ValidationError):
            errors = outcome.errors()
            assert {".".join(str(p) for p in e["loc"][: len(where)]) for e in errors} == {".".join(where)}
        else:
            value = _value(outcome, where)
            assert all(isinstance(v, str) and v and (allowed is None or v in allowed) for v in value)


@FAST
@given(
    topics=st.lists(
        st.tuples(
            st.text(st.characters(exclude_characters=",=", exclude_categories=["Cs"]), max_size=10),
            st.sampled_from(["", *TOPIC_KINDS]),
        ),
        min_size=1,
        max_size=4,
    ),
    text=ENV_TEXT,
)
def test_kafka_topics_parse_to_their_kinds_or_a_value_error(topics: list[tuple[str, str]], text: str) -> None:
    spelled = ",".join(f"{topic}={kind}" if kind else topic for topic, kind in topics)
    if all(topic.strip() for topic, _ in topics):
        assert parse_topics(spelled) == {topic.strip(): kind or None for topic, kind in topics}
    else:
        with pytest.raises(ValueError, match="empty topic name"):
            parse_topics(spelled)
    try:
        parsed = parse_topics(text)
    except ValueError:
        outcome = _from_env("TRIBUNAL_KAFKA_TOPICS", text)
        assert isinstance(outcome, ValidationError)
        assert outcome.errors()[0]["loc"] == ("kafka_topics",)
    else:
        assert all(t and t == t.strip() and k in (None, *TOPIC_KINDS) for t, k in parsed.items())


NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1}


@FAST
@given(text=st.text(max_size=30) | st.from_regex(r"\A[0-9]{1,22}[dhms]\Z"), number=st.integers(0, 10**20))
def test_since_is_a_time_or_a_value_error_naming_it(text: str, number: int) -> None:
    for value in (text, f"{number}d", f"{number}s"):
        try:
            outcome: datetime | ValueError = parse_since(value, now=NOW)
        except ValueError as exc:
            outcome = exc
        if isinstance(outcome, ValueError):
            assert str(outcome).startswith("since: ")
        else:
            assert outcome.tzinfo is not None
    span = f"{number % 10**7}h"
    try:
        since = parse_since(span, now=NOW)
    except ValueError:
        assert (number % 10**7) * 3600 > (NOW - datetime(1, 1, 1, tzinfo=UTC)).total_seconds()
    else:
        assert since == NOW - timedelta(hours=number % 10**7)


def test_since_spans_reaching_before_year_one_are_refused() -> None:
    """Found by schemathesis: ``?since=99999999d`` answered 500 (OverflowError) instead of 400."""
    for value in ("99999999d", "00547139036807s", f"{10**30}h"):
        with pytest.raises(ValueError, match=r"since: .* before the year 1"):
            parse_since(value, now=NOW)
    with pytest.raises(ValueError, match="since: "):
        parse_since("٣d", now=NOW)  # digits of other scripts are not a span


@FAST
@given(
    text=st.text(max_size=60), size=st.integers(1, 3), values=st.lists(json_values(5), min_size=1, max_size=3)
)
def test_cursors_decode_to_their_values_or_a_store_error(text: str, size: int, values: list[Any]) -> None:
    assert decode_cursor(encode_cursor(values), len(values)) == values
    try:
        outcome: list[Any] | StoreError = decode_cursor(text, size)
    except StoreError as exc:
        outcome = exc
    if isinstance(outcome, StoreError):
        assert str(outcome).startswith("cursor: ")
    else:
        assert isinstance(outcome, list) and len(outcome) == size


def test_a_json_list_in_the_environment_reads_as_the_comma_form() -> None:
    """Found by the property above: a JSON list was refused ("Input should be a valid list") by the
    nested list settings and split into garbage names by the others; a blank name was kept."""
    for variable, where, _ in LIST_SETTINGS[:2] + LIST_SETTINGS[4:]:
        value = '["annotate", " event ", ""]'
        outcome = _from_env(variable, value)
        assert not isinstance(outcome, ValidationError), outcome
        assert _value(outcome, where) == ["annotate", "event"], variable
    refused = _from_env("TRIBUNAL_EXEMPT_USERS", '["unclosed"')
    assert isinstance(refused, ValidationError) and refused.errors()[0]["loc"] == ("exempt_users",)
