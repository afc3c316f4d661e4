"""Settings from ``TRIBUNAL_*`` environment variables (and an optional YAML file); flags of the CLI
use the same names."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

EngineName = Literal["regorus", "regopy", "opa"]


class Settings(BaseSettings):
    """Every setting has a default that runs on one machine with no other service."""

    model_config = SettingsConfigDict(env_prefix="TRIBUNAL_", extra="ignore")

    host: str = Field("0.0.0.0", description="Address the server listens on.")
    port: int = Field(8443, ge=0, le=65535, description="Port of the webhook, ingest and read API.")
    tls_cert_file: Path | None = Field(None, description="PEM certificate; unset serves plain HTTP.")
    tls_key_file: Path | None = Field(None, description="PEM private key of tls_cert_file.")
    policy_dir: Path = Field(Path("policies"), description="Rego policies and their data files.")
    rules_dir: Path = Field(Path("rules"), description="enforcement.yaml, response/, frameworks/.")
    engine: EngineName = Field("regorus", description="Rego backend: regorus, regopy or opa.")
    opa_url: str | None = Field(None, description="OPA server URL, for engine=opa.")
    kafka_bootstrap_servers: str | None = Field(None, description="Unset: no Kafka consumers.")
    kafka_topics: str = Field(
        "falco-events=falco,trivy-reports=trivy,tribunal-admissions=admission",
        description="Input topics, comma-separated, each `topic=kind` (falco, trivy, admission) or "
        "`topic` alone (the kind is detected per message).",
    )
    kafka_group_id: str = Field("tribunal", description="Consumer group: replicas share its partitions.")
    kafka_verdict_topic: str = Field("tribunal-verdicts", description="Every verdict, keyed by subject.")
    kafka_alerts_topic: str = Field("tribunal-alerts", description="Verdicts that response rules alert on.")
    kafka_dlq_topic: str = Field("tribunal-dlq", description="Messages that could not be judged.")
    kafka_batch_size: int = Field(500, ge=1, description="Most messages one fetch returns.")
    kafka_max_in_flight: int = Field(
        2000, ge=1, description="Messages of one partition fetched but not yet done; past it, it pauses."
    )
    kafka_stop_grace: float = Field(
        10.0, ge=0, description="Seconds a stop or rebalance waits for in-flight messages to finish."
    )
    kafka_commit_interval: float = Field(1.0, gt=0, description="Seconds between offset commits.")
    judge_workers: int | None = Field(
        None, ge=0, description="Judge worker processes; unset: one per core; 0: judge in-process."
    )
    database_url: str = Field("sqlite+aiosqlite:///tribunal.db", description="Where verdicts are kept.")
    alertmanager_url: str | None = None
    ingest_token: str | None = Field(None, description="Bearer token required by /ingest/* when set.")
    dry_run: bool = Field(False, description="Judge and record, but never deny or act.")
    policy_reload_interval: float = Field(2.0, gt=0, description="Seconds between policy dir checks.")
    max_document_bytes: int = Field(
        64 * 1024 * 1024, gt=0, description="Largest evidence document read (a big Trivy report is ~20 MB)."
    )

    @field_validator("kafka_topics")
    @classmethod
    def _topics(cls, value: str) -> str:
        parse_topics(value)
        return value

    def kafka_topic_kinds(self) -> dict[str, str | None]:
        """``kafka_topics`` as topic -> kind (None: detect per message)."""
        return parse_topics(self.kafka_topics)

    @classmethod
    def load(cls, config_file: Path | None = None, **overrides: Any) -> Settings:
        """Defaults < YAML file < environment < explicit overrides (CLI flags)."""
        from_file: dict[str, Any] = {}
        if config_file is not None:
            loaded = yaml.safe_load(config_file.read_text(encoding="utf-8")) or {}
            if not isinstance(loaded, dict):
                raise ValueError(f"{config_file}: settings file must hold a mapping")
            from_file = loaded
        env = cls()
        merged = {**from_file, **env.model_dump(exclude_unset=True), **overrides}
        return cls.model_validate(merged)


TOPIC_KINDS = ("falco", "trivy", "admission")


def parse_topics(value: str) -> dict[str, str | None]:
    """``falco-events=falco,raw`` -> ``{"falco-events": "falco", "raw": None}``."""
    topics: dict[str, str | None] = {}
    for entry in value.split(","):
        topic, _, kind = (part.strip() for part in entry.partition("="))
        if not topic:
            raise ValueError(f"empty topic name in {value!r}")
        if kind and kind not in TOPIC_KINDS:
            raise ValueError(
                f"{topic}: unknown evidence kind {kind!r} (expected one of {', '.join(TOPIC_KINDS)})"
            )
        topics[topic] = kind or None
    return topics
