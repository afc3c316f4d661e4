"""Trivy reports: ``trivy image|fs|repo|config --format json`` (SchemaVersion 2), ``trivy k8s`` cluster
reports, and the Trivy Operator's report resources (VulnerabilityReport, ConfigAuditReport, …)."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, with_config
from pydantic.alias_generators import to_camel, to_pascal
from typing_extensions import TypedDict

from tribunal.model.common import JSONObject, Severity

OPERATOR_API_GROUP = "aquasecurity.github.io"
# The Trivy Operator report resources (plurals) Tribunal's policies read: what `tribunal serve` can
# list and watch (TRIBUNAL_TRIVY_OPERATOR_WATCH).
OPERATOR_REPORT_PLURALS = (
    "vulnerabilityreports",
    "configauditreports",
    "exposedsecretreports",
    "rbacassessmentreports",
    "clustervulnerabilityreports",
    "clusterconfigauditreports",
    "clusterrbacassessmentreports",
    "clustercompliancereports",
)


def trivy_severity(value: str | None) -> Severity:
    """Trivy's UNKNOWN/LOW/MEDIUM/HIGH/CRITICAL on Tribunal's scale (UNKNOWN and missing → info)."""
    try:
        return Severity((value or "").lower())
    except ValueError:
        return Severity.INFO


class _Pascal(BaseModel):
    model_config = ConfigDict(alias_generator=to_pascal, populate_by_name=True, extra="allow")


def _none_to_list(value: object) -> object:
    return [] if value is None else value


def _null_is_empty(field: str, accepted: Any) -> Any:
    """A validator reading ``null`` as an empty list (Trivy writes ``null`` for none); ``accepted``
    (``list[X] | None``) is what the JSON schema of the field says it takes (/openapi.json)."""
    return field_validator(field, mode="before", json_schema_input_type=accepted)(_none_to_list)


# Every field below follows Trivy's own Go types (pkg/types/report.go, vulnerability.go,
# misconfiguration.go, pkg/fanal/types/secret.go, pkg/k8s/report/report.go): a field Trivy tags
# `omitempty` may be missing, so nothing here but the identifying SchemaVersion value is required,
# and a missing one defaults to what Trivy would have left out (an empty string or list).


class TrivyVulnerability(_Pascal):
    vulnerability_id: str = Field("", alias="VulnerabilityID", max_length=256)
    pkg_name: str = ""
    pkg_id: str | None = Field(None, alias="PkgID")
    installed_version: str = ""
    fixed_version: str = ""
    severity: str = "UNKNOWN"
    title: str = ""


class TrivyMisconfiguration(_Pascal):
    id: str = Field("", alias="ID")
    avd_id: str = Field("", alias="AVDID")
    title: str = ""
    severity: str = "UNKNOWN"
    status: str = ""
    message: str = ""


class TrivySecret(_Pascal):
    rule_id: str = Field("", alias="RuleID")
    category: str = ""
    severity: str = "UNKNOWN"
    title: str = ""
    start_line: int | None = None


class TrivyResult(_Pascal):
    target: str = ""
    class_: str | None = Field(None, alias="Class")
    type: str | None = None
    vulnerabilities: list[TrivyVulnerability] = Field(default_factory=list)
    misconfigurations: list[TrivyMisconfiguration] = Field(default_factory=list)
    secrets: list[TrivySecret] = Field(default_factory=list)

    _vulnerabilities = _null_is_empty("vulnerabilities", list[TrivyVulnerability] | None)
    _misconfigurations = _null_is_empty("misconfigurations", list[TrivyMisconfiguration] | None)
    _secrets = _null_is_empty("secrets", list[TrivySecret] | None)


class TrivyReport(_Pascal):
    """``trivy image|fs|repo|config|vm --format json``. Trivy tags every top-level field ``omitempty``:
    a report without ``ArtifactName`` (as the Trivy Operator's scan jobs can write), ``ArtifactType``,
    ``Metadata`` or ``Results`` is still judged. ``SchemaVersion``, when present, must be 2 (the
    layout read here); Trivy leaves it out only when it is 0."""

    schema_version: Literal[2] | None = None
    artifact_name: str = Field("", max_length=4096)
    artifact_type: str | None = None
    metadata: JSONObject = Field(default_factory=dict)
    results: list[TrivyResult] = Field(default_factory=list)

    _results = _null_is_empty("results", list[TrivyResult] | None)

    @field_validator("metadata", mode="before", json_schema_input_type=JSONObject | None)
    @classmethod
    def _null_metadata(cls, value: object) -> object:
        return {} if value is None else value

    def _metadata_strings(self, key: str) -> list[str]:
        values = self.metadata.get(key)
        return [v for v in values if isinstance(v, str) and v] if isinstance(values, list) else []

    @property
    def image(self) -> str | None:
        """The scanned image: ``ArtifactName`` of a container image report, else (no ``ArtifactName``)
        the first of ``Metadata.RepoTags``, else the repository of ``Metadata.RepoDigests``."""
        if self.artifact_name:
            is_image = self.artifact_type in ("container_image", None) and ":" in self.artifact_name
            return self.artifact_name if is_image else None
        if self.artifact_type not in ("container_image", None):
            return None
        tags = self._metadata_strings("RepoTags")
        if tags:
            return tags[0]
        digests = self._metadata_strings("RepoDigests")
        return digests[0] if digests else None

    @property
    def image_digest(self) -> str | None:
        digests = self._metadata_strings("RepoDigests")
        if digests and "@" in digests[0]:
            return digests[0].split("@", 1)[1]
        return None


class TrivyK8sResource(_Pascal):
    namespace: str = ""
    kind: str = ""
    name: str = ""
    results: list[TrivyResult] = Field(default_factory=list)

    _results = _null_is_empty("results", list[TrivyResult] | None)


class TrivyK8sReport(_Pascal):
    """``trivy k8s --format json``: per-resource results (``Resources``; ``Findings`` with ``--report
    summary``) or the older split layout (``Vulnerabilities`` / ``Misconfigurations`` lists of
    resources). ``ClusterName`` is the one field Trivy always writes; ``SchemaVersion`` may be missing."""

    cluster_name: str = Field(max_length=253)
    resources: list[TrivyK8sResource] = Field(default_factory=list)
    findings: list[TrivyK8sResource] = Field(default_factory=list)
    vulnerabilities: list[TrivyK8sResource] = Field(default_factory=list)
    misconfigurations: list[TrivyK8sResource] = Field(default_factory=list)

    _resources = _null_is_empty("resources", list[TrivyK8sResource] | None)
    _findings = _null_is_empty("findings", list[TrivyK8sResource] | None)
    _vulnerabilities = _null_is_empty("vulnerabilities", list[TrivyK8sResource] | None)
    _misconfigurations = _null_is_empty("misconfigurations", list[TrivyK8sResource] | None)

    def all_resources(self) -> list[TrivyK8sResource]:
        return [*self.resources, *self.findings, *self.vulnerabilities, *self.misconfigurations]


class ObjectMeta(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="allow")

    name: str = Field("", max_length=253)
    namespace: str = Field("", max_length=253)
    uid: str = ""
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)

    @field_validator("labels", "annotations", mode="before", json_schema_input_type=dict[str, str] | None)
    @classmethod
    def _null_map(cls, value: object) -> object:
        return {} if value is None else value


@with_config(ConfigDict(extra="allow"))
class OperatorReportBody(TypedDict, total=False):
    """An operator report's ``report``, kept a mapping (every field it holds stays, for the policies):
    only the parts Tribunal reads itself are typed, so that one of the wrong JSON type (an ``artifact``
    that is a string) is refused naming its field instead of failing in an accessor."""

    artifact: JSONObject | None
    registry: JSONObject | None


class TrivyOperatorReport(BaseModel):
    """A Trivy Operator resource (``aquasecurity.github.io/*``): VulnerabilityReport, ConfigAuditReport,
    ExposedSecretReport, RbacAssessmentReport, SbomReport, ClusterComplianceReport and their cluster forms.
    ``report`` (or ``status`` for compliance reports) stays a mapping; accessors type what policies use."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="allow")

    api_version: str = Field(pattern="^" + re.escape(OPERATOR_API_GROUP + "/"))
    kind: str = Field(min_length=1, max_length=128)
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    report: OperatorReportBody | None = None
    spec: JSONObject | None = None
    status: JSONObject | None = None

    def _part(self, key: str) -> dict[str, Any]:
        value = (self.report or {}).get(key)
        return value if isinstance(value, dict) else {}

    @property
    def image(self) -> str | None:
        artifact = self._part("artifact")
        repository = artifact.get("repository")
        if not repository:
            return None
        registry = self._part("registry").get("server")
        name = f"{registry}/{repository}" if registry else str(repository)
        tag = artifact.get("tag")
        return f"{name}:{tag}" if tag else name

    @property
    def image_digest(self) -> str | None:
        digest = self._part("artifact").get("digest")
        return str(digest) if digest else None

    def label(self, suffix: str) -> str | None:
        """A ``trivy-operator.*`` label such as ``resource.kind`` or ``container.name``."""
        return self.metadata.labels.get(f"trivy-operator.{suffix}")

    def items(self, key: str) -> list[dict[str, Any]]:
        """``report.<key>`` as a list of mappings (vulnerabilities, checks, secrets), empty when absent."""
        value: Any = (self.report or {}).get(key)
        return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []
