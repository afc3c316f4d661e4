"""``alert`` to Alertmanager: ``POST /api/v2/alerts``, one alert per violated policy, labelled from the
verdict, ``endsAt`` one dedupe window ahead (the alert resolves unless the violation recurs), and a
``generatorURL`` to the verdict in Tribunal's read API when ``external_url`` is set."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
from pydantic import BaseModel, ConfigDict, Field

from tribunal.actions.alert import alert_labels, http_target_error, verdict_url
from tribunal.actions.base import (
    ActionRequest,
    ActionSkipped,
    ActionTarget,
    TargetDeps,
    TargetSpec,
    http_error,
)
from tribunal.model import Severity
from tribunal.settings import ActionSettings

DEFAULT_RESOLVE = 300.0  # seconds an alert lasts when its rule does not dedupe


class AlertmanagerParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(None, description="Alertmanager base URL; default TRIBUNAL_ALERTMANAGER_URL.")
    labels: dict[str, str] = Field(default_factory=dict, description="Extra labels (e.g. team, route).")
    annotations: dict[str, str] = Field(default_factory=dict)
    severity_map: dict[Severity, str] = Field(
        default_factory=dict,
        description="The `severity` label per Tribunal severity, over the default critical -> critical, "
        "high and medium -> warning, low and info -> info (as falcosidekick's customseveritymap).",
    )


def build_payload(
    request: ActionRequest, settings: ActionSettings, now: datetime | None = None
) -> list[dict[str, Any]]:
    """The JSON body of ``POST /api/v2/alerts`` (a pure function)."""
    params = request.params
    assert isinstance(params, AlertmanagerParams)
    now = (now or datetime.now(UTC)).astimezone(UTC)
    lasts = request.dedupe_seconds or DEFAULT_RESOLVE
    alerts: list[dict[str, Any]] = []
    for policy in request.policies:
        matched = [v for v in request.violations if v.policy == policy]
        controls = sorted({c for v in matched for c in v.controls})
        alert: dict[str, Any] = {
            "labels": alert_labels(request, policy, params.labels, params.severity_map),
            "annotations": {
                "summary": matched[0].msg[:1024],
                "description": "\n".join(v.msg for v in matched)[:4096],
                "evidence_id": request.verdict.evidence_id,
                "policy_revision": request.verdict.policy_revision,
                **({"controls": ", ".join(controls)} if controls else {}),
                **params.annotations,
            },
            "startsAt": now.isoformat().replace("+00:00", "Z"),
            "endsAt": (now + timedelta(seconds=lasts)).isoformat().replace("+00:00", "Z"),
        }
        url = verdict_url(settings.external_url, request.verdict.evidence_id)
        if url is not None:
            alert["generatorURL"] = url
        alerts.append(alert)
    return alerts


class Alertmanager:
    def __init__(self, deps: TargetDeps) -> None:
        self.settings = deps.settings
        self._http = deps.http
        self.default_url = deps.alertmanager_url

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    def _url(self, request: ActionRequest) -> str:
        params = request.params
        assert isinstance(params, AlertmanagerParams)
        url = params.url or self.default_url
        if not url:
            raise ActionSkipped("no Alertmanager URL (set TRIBUNAL_ALERTMANAGER_URL or params.url)")
        return url.rstrip("/") + "/api/v2/alerts"

    def plan(self, request: ActionRequest) -> dict[str, Any]:
        return {"would": f"POST {self._url(request)}", "alerts": build_payload(request, self.settings)}

    async def run(self, request: ActionRequest) -> dict[str, Any]:
        url = self._url(request)
        if self._http is None:
            raise ActionSkipped("no HTTP client is configured")
        session: aiohttp.ClientSession = self._http()
        alerts = build_payload(request, self.settings)
        try:
            async with session.post(url, json=alerts) as response:
                if response.status >= 300:
                    raise http_error("alertmanager", response.status, await response.text())
        except (TimeoutError, aiohttp.ClientConnectionError) as exc:
            raise http_target_error("alertmanager", exc) from None
        return {"url": url, "alerts": len(alerts), "policies": request.policies}


def _build(deps: TargetDeps) -> ActionTarget:
    return Alertmanager(deps)


SPEC = TargetSpec("alert", "alertmanager", AlertmanagerParams, _build)
