"""The Evidence envelope every source produces."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from tribunal.model.admission import AdmissionReview
from tribunal.model.falco import FalcoAlert
from tribunal.model.trivy import TrivyK8sReport, TrivyOperatorReport, TrivyReport


class EvidenceKind(StrEnum):
    ADMISSION = "admission"
    FALCO = "falco"
    TRIVY = "trivy"


class Subject(BaseModel):
    """What the evidence is about, as far as it says."""

    model_config = ConfigDict(extra="forbid")

    cluster: str | None = None
    namespace: str | None = None
    workload_kind: str | None = None
    workload_name: str | None = None
    pod: str | None = None
    container: str | None = None
    image: str | None = None
    image_digest: str | None = None
    host: str | None = None

    def key(self) -> str:
        """A stable text key (``namespace/kind/name``) for partitioning and findings."""
        parts = [self.namespace or "-", self.workload_kind or "-", self.workload_name or self.pod or "-"]
        if self.workload_name is None and self.pod is None and self.image:
            parts[2] = self.image
        return "/".join(parts)


EvidenceBody = AdmissionReview | FalcoAlert | TrivyReport | TrivyK8sReport | TrivyOperatorReport


class Evidence(BaseModel):
    """One piece of evidence: ``id`` is stable (AdmissionReview uid, Falco uuid or content hash,
    Trivy report digest), so judging the same evidence twice is idempotent downstream."""

    id: str = Field(min_length=1, max_length=256)
    kind: EvidenceKind
    received_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    source: str = ""
    subject: Subject = Field(default_factory=Subject)
    body: EvidenceBody

    # The document exactly as it arrived: policies see this, not a re-serialisation of ``body``.
    _document: dict[str, Any] | None = PrivateAttr(default=None)
    # The JSON text ``_document`` was parsed from, when kept: spliced into the policy input as is.
    _raw: bytes | None = PrivateAttr(default=None)

    def event(self) -> dict[str, Any]:
        """The body as JSON, as the policy input's ``event``."""
        document = self._document  # a private attribute: each read is a slow lookup
        if document is not None:
            return document
        dumped: dict[str, Any] = self.body.model_dump(mode="json", by_alias=True, exclude_unset=True)
        return dumped

    def policy_input(self, context: dict[str, Any] | None = None) -> dict[str, Any]:
        """``{"kind", "event", "subject", "context"}`` as the Rego policies read it."""
        return {
            "kind": self.kind.value,
            "event": self.event(),
            "subject": self.subject.model_dump(exclude_none=True),
            "context": context or {},
        }

    def policy_input_json(self, context: dict[str, Any] | None = None) -> bytes:
        """:meth:`policy_input` as JSON. When the source kept the document's own JSON text, it is
        spliced in as the ``event`` rather than serialised again (a large Trivy report costs
        milliseconds to re-serialise; every Falco alert, microseconds)."""
        raw = self._raw  # a private attribute: each read is a slow lookup
        if raw is None:
            return orjson.dumps(self.policy_input(context))
        return b"".join(
            (
                b'{"kind":"',
                self.kind.value.encode(),
                b'","event":',
                raw,
                b',"subject":',
                self.subject.model_dump_json(exclude_none=True).encode(),
                b',"context":',
                orjson.dumps(context) if context else b"{}",
                b"}",
            )
        )
