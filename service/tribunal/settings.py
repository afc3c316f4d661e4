"""Settings from ``TRIBUNAL_*`` environment variables (and an optional YAML file); flags of the CLI
use the same names."""

from __future__ import annotations

import difflib
import json
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from tribunal.bundled import BUNDLED, BundledMissing, BundledName, bundled_dir
from tribunal.model.redact import Redaction
from tribunal.model.trivy import OPERATOR_REPORT_PLURALS

EngineName = Literal["regorus", "regorus-interpreter", "regopy", "opa"]
ClusterAction = Literal["annotate", "label", "event", "quarantine", "terminate"]
# A list setting: comma-separated in the environment (TRIBUNAL_EXEMPT_USERS=a,b), a list in YAML.
NameList = Annotated[list[str], NoDecode]


def split_names(value: Any) -> Any:
    """A list setting: comma-separated names (``a, b``) or a JSON list (``["a", "b"]``) as text (the
    environment, a flag), a list in a YAML file. Names are stripped and blank ones dropped however
    they are spelled (an exempt user "" would exempt every review without a username); what is not
    a list of strings is left to the field's own validation, which names the setting."""
    if isinstance(value, str):
        if not value.lstrip().startswith("["):
            return [item.strip() for item in value.split(",") if item.strip()]
        try:
            value = json.loads(value)  # text opening with "[" that parses is a list
        except (ValueError, RecursionError):
            raise ValueError(f"{value[:60]!r} is neither comma-separated names nor a JSON list") from None
    if isinstance(value, list):
        return [v.strip() if isinstance(v, str) else v for v in value if not isinstance(v, str) or v.strip()]
    return value


class ActionSettings(BaseModel):
    """How Tribunal acts on verdicts (``TRIBUNAL_ACTIONS__<FIELD>``, e.g. TRIBUNAL_ACTIONS__STATE_DIR).
    Response rules say *what* to do; these say *how*: where state lives, limits, retries."""

    model_config = ConfigDict(extra="forbid")

    state_dir: Path = Field(
        Path(".tribunal-state"),
        description="Where block-image keeps images.json (policy data that must survive a restart).",
    )
    kubeconfig: Path | None = Field(
        None, description="Kubeconfig for cluster actions; unset: in-cluster config, else ~/.kube/config."
    )
    kube_context: str | None = Field(None, description="Kubeconfig context; unset: the current one.")
    kube_api_url: str | None = Field(
        None, description="Talk to this API server URL without credentials (kubectl proxy, tests)."
    )
    external_url: str | None = Field(
        None,
        description="Tribunal's own URL, for alert generatorURL links to /verdicts/<id> (and the "
        "source of CloudEvents).",
    )
    webhook_url: str | None = Field(None, description="Default URL of `alert` actions with target webhook.")
    alerts_topic: str = Field(
        "tribunal-alerts", description="Kafka topic of `alert` actions with target kafka."
    )
    timeout_seconds: float = Field(10.0, gt=0, description="Deadline of one attempt of one action.")
    max_attempts: int = Field(
        4, ge=1, le=20, description="Attempts per action, retries of transient failures included."
    )
    backoff_seconds: float = Field(
        0.5, ge=0, description="First retry delay; doubles per retry, with jitter."
    )
    backoff_max_seconds: float = Field(10.0, ge=0, description="Longest retry delay.")
    destructive_per_minute: int = Field(
        5, ge=0, description="Quarantines and terminations allowed per namespace per minute (0: none)."
    )
    field_manager: str = Field("tribunal", description="fieldManager of Tribunal's writes to the cluster.")
    cluster_actions: Annotated[list[ClusterAction], NoDecode] = Field(
        ["annotate", "label", "event", "quarantine", "terminate"],
        description="The cluster actions this installation may run (comma-separated); a rule's other "
        "cluster actions are skipped with the reason. The chart sets it from its `actions` values and "
        "grants RBAC for exactly these.",
    )
    owners: bool = Field(
        True,
        description="annotate and label may follow ownerReferences and patch the owning workloads "
        "(patch on Deployments lets the holder change their pod templates; the chart leaves it off).",
    )
    namespaces: NameList = Field(
        [],
        description="Namespaces the cluster actions may act in (comma-separated); empty: every namespace "
        "(the chart's rbac.scope=namespaces sets them with a Role in each).",
    )

    _names = field_validator("cluster_actions", "namespaces", mode="before")(split_names)

    cluster: bool = Field(
        True,
        description="Run the cluster actions (annotate, label, event, quarantine, terminate); false: they "
        "are skipped and say why. `tribunal dev` sets false unless a cluster is named explicitly.",
    )
    outbox_grace_seconds: float = Field(
        300.0,
        gt=0,
        description="Verdicts recorded this long ago whose actions never settled (a replica died between "
        "recording and acting) are acted on again by the outbox sweep, every half of it.",
    )
    outbox_retries: int = Field(
        10,
        ge=0,
        le=100,
        description="An action still failing transiently after max_attempts (its receiver down) keeps "
        "its verdict in the outbox, and the outbox sweep tries it again this many times at most, the "
        "delay doubling from outbox_grace_seconds up to 8 times it; then it is recorded as failed.",
    )
    shared_state: Literal["auto", "database", "local"] = Field(
        "auto",
        description="Where the dedupe windows, the blast-radius budget and the blocked images live: "
        "`database` shares them between the replicas on TRIBUNAL_DATABASE_URL, `local` keeps them in "
        "each process (and images.json); `auto`: `database` on PostgreSQL, `local` on SQLite.",
    )
    state_poll_seconds: float = Field(
        5.0,
        gt=0,
        description="How often each replica reads the shared blocked images, besides PostgreSQL's "
        "notifications (which make a block reach every replica at once).",
    )
    shared_state_timeout_seconds: float = Field(
        2.0,
        gt=0,
        description="Deadline of one read or write of the shared state; past it, dedupe acts, "
        "destructive actions are refused and the blocked images stay as last read.",
    )


class AuthSettings(BaseModel):
    """Who may use the server's doors other than /validate, /healthz and /readyz
    (``TRIBUNAL_AUTH__<FIELD>``; docs/security.md). With none of these set, those doors answer 401."""

    model_config = ConfigDict(extra="forbid")

    kubernetes: bool = Field(
        False,
        description="Accept bearer tokens the Kubernetes API server vouches for (TokenReview) whose user "
        "may use the path and verb (SubjectAccessReview on the non-resource URL), as kube-rbac-proxy; the "
        "cluster connection is actions.kube_api_url / kubeconfig / in-cluster.",
    )
    audiences: NameList = Field(
        [],
        description="Audiences the tokens must be meant for (TokenReview, comma-separated); "
        "empty: the API server's.",
    )
    read_token: SecretStr | None = Field(
        None, description="A static bearer token for the read API and /metrics (outside a cluster)."
    )
    anonymous: bool = Field(
        False, description="Open every door without a token: only for `tribunal dev` on loopback."
    )
    cache_seconds: float = Field(60.0, ge=0, description="How long a token's review is reused.")

    _names = field_validator("audiences", mode="before")(split_names)


class Settings(BaseSettings):
    """Every setting has a default that runs on one machine with no other service."""

    model_config = SettingsConfigDict(env_prefix="TRIBUNAL_", env_nested_delimiter="__", extra="ignore")

    host: str = Field("0.0.0.0", description="Address the server listens on.")
    port: int = Field(8443, ge=0, le=65535, description="Port of the webhook, ingest and read API.")
    metrics_port: int = Field(
        0,
        ge=0,
        le=65535,
        description="0: /metrics is served on `port` (TLS, authenticated). Else also on this port of "
        "`host`, plain HTTP and unauthenticated, for a scraper without TLS or tokens: keep it on the "
        "pod network behind a NetworkPolicy (docs/operations.md#metrics).",
    )
    tls_cert_file: Path | None = Field(
        None, description="PEM certificate; `serve` refuses to start without one unless plain_http."
    )
    plain_http: bool = Field(
        False,
        description="Serve plain HTTP when no certificate is set: only behind a TLS-terminating proxy or "
        "for local tests (the API server calls webhooks over HTTPS only).",
    )
    tls_key_file: Path | None = Field(None, description="PEM private key of tls_cert_file.")
    tls_client_ca_file: Path | None = Field(
        None,
        description="PEM CA of the client certificate POST /validate then requires: the API server's, "
        "from its AdmissionConfiguration kubeconfig (docs/security.md#the-api-servers-certificate); a "
        "review sent without a certificate that CA signed gets 401. Unset: /validate is open (the API "
        "server sends no token).",
    )
    tls_client_names: NameList = Field(
        [],
        description="With tls_client_ca_file: the client certificate's common name or a DNS name of it "
        "must be one of these (e.g. kube-apiserver, as Gatekeeper's --client-cn-name), else 403; empty: "
        "any certificate the CA signed.",
    )
    policy_dir: Path = Field(
        BUNDLED,  # a word, resolved to a folder by _folder below
        validate_default=True,
        description="Rego policies and their data files: a folder, or `bundled`, the library installed "
        "with Tribunal (in a checkout, the repository's policies/).",
    )
    rules_dir: Path = Field(
        BUNDLED,
        validate_default=True,
        description="enforcement.yaml, response/, frameworks/: a folder, or `bundled`, the rules installed "
        "with Tribunal (in a checkout, the repository's rules/).",
    )
    engine: EngineName = Field(
        "regorus", description="Rego backend: regorus, regorus-interpreter, regopy or opa."
    )
    opa_url: str | None = Field(None, description="OPA server URL, for engine=opa (http(s)://host:port).")
    opa_token: str | None = Field(None, description="Bearer token OPA requires, for engine=opa.")
    opa_timeout_seconds: float = Field(
        2.0, gt=0, description="Timeout of each request to the OPA server, for engine=opa."
    )
    kafka_bootstrap_servers: str | None = Field(None, description="Unset: no Kafka consumers.")
    kafka_topics: str = Field(
        "falco-events=falco,trivy-reports=trivy,tribunal-admissions=admission",
        description="Input topics, comma-separated, each `topic=kind` (falco, trivy, admission) or "
        "`topic` alone (the kind is detected per message).",
    )
    kafka_group_id: str = Field("tribunal", description="Consumer group: replicas share its partitions.")
    kafka_verdict_topic: str = Field("tribunal-verdicts", description="Every verdict, keyed by subject.")
    kafka_audit_topic: str = Field(
        "tribunal-admissions", description="Where the webhook publishes a copy of each admission review."
    )
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
        None,
        ge=0,
        description="Judge worker processes; unset: one per core (tribunal serve: one per core but one, "
        "at least one, so its event loop keeps a core); 0: judge in-process.",
    )
    judge_cpu_limit_seconds: float = Field(
        10.0,
        ge=0,
        description="CPU seconds a judge worker may spend on one document; past it the worker is "
        "stopped and replaced and the document rejected (a runaway policy must not hold up the rest); "
        "0: no limit. Not applied when judging in-process.",
    )
    webhook_judge: Literal["pool", "inline"] = Field(
        "pool",
        description="Where admission reviews are judged: pool (the judge_workers processes, batched; "
        "a review past its deadline is answered by the failure policy even while one evaluation runs "
        "long) or inline (on the server's event loop; see docs/benchmarks.md).",
    )
    bulk_judge_workers: int | None = Field(
        None,
        ge=0,
        description="tribunal serve: judge worker processes of their own for everything but admission "
        "(ingest, Kafka, the Trivy Operator watch) and for oversized reviews, so they never queue in "
        "front of a review; unset: 1 (0 when judge_workers is 0: in-process).",
    )
    bulk_judge_niceness: int = Field(
        10,
        ge=0,
        le=19,
        description="How much lower than admission's the bulk judge workers run (a nice increment; 0: "
        "the same): on a busy machine the CPU goes to reviews first.",
    )
    webhook_large_review_bytes: int = Field(
        512 * 1024,
        gt=0,
        description="Reviews larger than this are judged by the bulk workers: one huge review (a pod "
        "with 40,000 containers) cannot hold up the small ones behind it.",
    )
    ingest_max_in_flight: int = Field(
        4, ge=1, description="/ingest/* requests read, judged and recorded at once; more wait (see below)."
    )
    ingest_max_bytes_in_flight: int = Field(
        128 * 1024 * 1024,
        gt=0,
        description="Bytes of /ingest/* bodies (by Content-Length) held at once; a request alone "
        "always fits.",
    )
    ingest_queue_seconds: float = Field(
        2.0,
        ge=0,
        description="Seconds an /ingest/* request waits for room before it is refused with 429 and "
        "Retry-After (producers retry; falcosidekick and the Trivy Operator do).",
    )
    database_url: str = Field(
        "sqlite+aiosqlite:///tribunal.db",
        description="Where verdicts are kept: sqlite+aiosqlite:///FILE; postgresql+asyncpg://… for replicas.",
    )
    database_compress_level: int = Field(
        3,
        ge=1,
        le=19,
        description="zstd level (1-19) of stored raw evidence: 1-3 cost least CPU; more stores less.",
    )
    database_thread_nice: int = Field(
        10,
        ge=0,
        le=19,
        description="SQLite: how much lower than the server's its database threads run (a nice "
        "increment, 0-19; 0: the same). Writes are background work: below the event loop and the judge "
        "workers, their bursts no longer delay answers. Ignored for PostgreSQL.",
    )
    evidence_redaction: Redaction = Field(
        Redaction.SECRETS,
        description="What is taken out of raw evidence before it is stored (policies judge it whole): "
        "secrets (Secret values, env values with secret-like names, passwords and tokens in command "
        "lines and Falco outputs, Trivy secret findings), all-env (also every env value) or none "
        "(everything kept in clear, for labs); docs/security.md#evidence-at-rest.",
    )
    retention_days: float | None = Field(
        None,
        gt=0,
        description="Prune raw evidence older than this many days (verdicts, findings stay); unset: never.",
    )
    alertmanager_url: str | None = Field(None, description="Alertmanager base URL for `alert` actions.")
    actions: ActionSettings = Field(default_factory=ActionSettings, description="How verdicts are acted on.")
    ingest_token: SecretStr | None = Field(
        None, description="A static bearer token for /ingest/* (producers outside the cluster)."
    )
    auth: AuthSettings = Field(
        default_factory=AuthSettings, description="Authentication of every door but /validate and health."
    )
    dry_run: bool = Field(False, description="Judge and record, but never deny or act.")
    failure_policy: Literal["fail", "ignore"] = Field(
        "fail", description="When no verdict is reached in time: fail (deny) or ignore (allow)."
    )
    webhook_deadline_seconds: float = Field(
        3.0, gt=0, lt=30, description="Deadline of one admission verdict (the API server waits 10 s at most)."
    )
    namespace: str | None = Field(None, description="The service's own namespace, always exempt.")
    exempt_namespaces: NameList = Field(["kube-system"], description="Namespaces admitted unjudged.")
    exempt_users: NameList = Field([], description="Users admitted unjudged (e.g. system:serviceaccount:…).")
    exempt_groups: NameList = Field([], description="Groups admitted unjudged.")
    max_request_bytes: int = Field(8 * 1024 * 1024, gt=0, description="Largest admission request body.")
    keepalive_timeout_seconds: float = Field(
        75.0,
        gt=0,
        description="Seconds a connection may stay idle (no request, or a request line or headers not "
        "finished) before the server closes it; the API server reconnects as it needs.",
    )
    body_read_timeout_seconds: float = Field(
        10.0,
        gt=0,
        description="Seconds a request body (/validate, /ingest/*) may take to arrive after its headers; "
        "past it the request gets 408 and its connection is closed (a client sending a byte at a time "
        "would otherwise hold a connection and a handler as long as it likes).",
    )
    recorder_max_queue: int = Field(
        10_000,
        ge=1,
        description="Admission verdicts held in memory waiting for the store; past it (the store down or "
        "too slow) they are dropped and counted in tribunal_recorder_dropped_total.",
    )
    tls_reload_interval: float = Field(5.0, gt=0, description="Seconds between certificate file checks.")
    shutdown_delay_seconds: float = Field(
        5.0,
        ge=0,
        le=300,
        description="tribunal serve, on SIGTERM: seconds it reports not ready and goes on serving before "
        "it stops, so the API server stops calling it first (0: stop at once; SIGINT always does).",
    )
    policy_reload_interval: float = Field(2.0, gt=0, description="Seconds between policy dir checks.")
    policy_allow_network: bool = Field(
        False,
        description="Allow Rego built-ins that reach the network (http.send, net.lookup_ip_addr); "
        "refused at load otherwise, on every engine.",
    )
    max_document_bytes: int = Field(
        64 * 1024 * 1024, gt=0, description="Largest evidence document read (a big Trivy report is ~20 MB)."
    )
    trivy_operator_watch: NameList = Field(
        [],
        description="Trivy Operator report resources to list and watch across the cluster and judge "
        "(plurals, e.g. vulnerabilityreports,configauditreports; 'all': every kind Tribunal reads); "
        "empty: no watch. The cluster connection is actions.kube_api_url / kubeconfig / in-cluster.",
    )
    policy_reports: bool = Field(
        False,
        description="Write the open findings to the cluster as PolicyReports (one per namespace) and a "
        "ClusterPolicyReport, kept up to date, for Policy Reporter and `kubectl get policyreports` "
        "(docs/reports.md). The cluster connection is actions.kube_api_url / kubeconfig / in-cluster.",
    )
    policy_reports_interval_seconds: float = Field(
        60.0, gt=0, description="How often the PolicyReports are brought up to date with the findings."
    )
    policy_reports_max_results: int = Field(
        500,
        ge=1,
        le=5000,
        description="Results per report at most; a namespace with more findings gets several reports.",
    )
    policy_reports_api: Literal["wgpolicyk8s.io", "openreports.io", "both"] = Field(
        "wgpolicyk8s.io",
        description="The API of the reports: wgpolicyk8s.io/v1alpha2 PolicyReport/ClusterPolicyReport, "
        "openreports.io/v1alpha1 Report/ClusterReport (their successor), or both.",
    )

    _names = field_validator(
        "exempt_namespaces", "exempt_users", "exempt_groups", "trivy_operator_watch", mode="before"
    )(split_names)

    @field_validator("policy_dir", "rules_dir", mode="before")
    @classmethod
    def _folder(cls, value: Any, info: ValidationInfo) -> Any:
        """``bundled`` (the default): the folder installed with Tribunal; any other value must be an
        existing folder, or the error names the setting and how to fix it."""
        name: BundledName = "policies" if info.field_name == "policy_dir" else "rules"
        flag, variable = _FOLDER_SETTINGS[name]
        if isinstance(value, str | Path) and str(value) == BUNDLED:
            try:
                return bundled_dir(name)
            except BundledMissing as exc:
                raise ValueError(f"{exc}; or give a folder with {flag} or {variable}") from None
        if isinstance(value, str | Path) and not Path(value).is_dir():
            problem = "is a file, not a folder" if Path(value).exists() else "no such folder"
            raise ValueError(
                f"{value}: {problem} (set by {flag}, {variable} or the settings file): give the folder "
                f"that holds your {name}, or leave the setting out to use the {name} installed with "
                f"Tribunal ({BUNDLED})"
            )
        return value

    @field_validator("trivy_operator_watch")
    @classmethod
    def _watched_reports(cls, value: list[str]) -> list[str]:
        known = list(OPERATOR_REPORT_PLURALS)
        if value == ["all"]:
            return known
        unknown = [v for v in value if v not in known]
        if unknown:
            raise ValueError(
                f"unknown Trivy Operator resources {unknown}; choose from {', '.join(known)} or all"
            )
        return list(dict.fromkeys(value))

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
        from_file = read_settings_file(config_file) if config_file is not None else {}
        env = cls()
        merged = _deep_merge(_deep_merge(from_file, env.model_dump(exclude_unset=True)), overrides)
        return cls.model_validate(merged)


class SettingsFileError(ValueError):
    """The settings file cannot be used; the message names the file and what is wrong."""


def read_settings_file(path: Path) -> dict[str, Any]:
    """The settings of YAML file ``path`` (``--config``): a mapping of known settings, or
    SettingsFileError naming the file and the problem (missing, a folder, not YAML, not a mapping,
    an unknown key: with the closest known one)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SettingsFileError(f"--config {path}: no such file") from None
    except IsADirectoryError:
        raise SettingsFileError(f"--config {path}: a folder, not a settings file (YAML)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SettingsFileError(f"--config {path}: cannot read: {exc}") from None
    try:
        loaded = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise SettingsFileError(f"--config {path}: not valid YAML{where}: {problem}") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise SettingsFileError(
            f"--config {path}: must hold a mapping of settings (e.g. `port: 8443`), "
            f"not a {type(loaded).__name__}"
        )
    known = set(Settings.model_fields)
    for key in loaded:
        if key not in known:
            close = difflib.get_close_matches(str(key), sorted(known), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise SettingsFileError(
                f"--config {path}: unknown setting {key!r}{hint}; "
                "the settings are listed in docs/operations.md"
            )
    return loaded


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """``over`` on top of ``base``; nested sections (``actions``, ``auth``) merge key by key, so a flag
    that sets one key of a section keeps the others the environment set."""
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


# The flag and the variable that set policy_dir / rules_dir, named by their errors.
_FOLDER_SETTINGS: dict[str, tuple[str, str]] = {
    "policies": ("--policies", "TRIBUNAL_POLICY_DIR"),
    "rules": ("--rules", "TRIBUNAL_RULES_DIR"),
}

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
