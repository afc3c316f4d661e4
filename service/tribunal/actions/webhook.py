"""``alert`` to a generic webhook: ``POST`` JSON (the verdict and its matched violations), a
Slack-compatible payload (``text`` + ``blocks``, for Slack incoming webhooks and look-alikes), or a
CloudEvent (CloudEvents 1.0, structured mode: ``application/cloudevents+json`` whose ``data`` is the JSON
payload), for Knative Eventing, Argo Events and other CloudEvents receivers."""

from __future__ import annotations

from typing import Any, Literal

import aiohttp
import orjson
from pydantic import BaseModel, ConfigDict, Field

from tribunal.actions.alert import alert_labels, http_target_error, summary, verdict_url, violations_json
from tribunal.actions.base import (
    ActionRequest,
    ActionSkipped,
    ActionTarget,
    TargetDeps,
    TargetSpec,
    http_error,
)
from tribunal.settings import ActionSettings


class WebhookParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(None, description="Where to POST; default TRIBUNAL_ACTIONS__WEBHOOK_URL.")
    format: Literal["json", "slack", "cloudevents"] = "json"
    headers: dict[str, str] = Field(default_factory=dict, description="Extra request headers.")


CLOUDEVENT_TYPE = "io.tribunal.verdict"
CLOUDEVENTS_CONTENT_TYPE = "application/cloudevents+json; charset=utf-8"


def build_cloudevent(request: ActionRequest, settings: ActionSettings | None = None) -> dict[str, Any]:
    """The verdict as a CloudEvent in structured mode (a pure function). ``id`` is the evidence id and
    the response rule, so a retried delivery is the same event to a receiver that deduplicates;
    ``source`` is Tribunal's external URL (``tribunal`` without one); ``subject`` the verdict's
    subject key (``namespace/kind/name``)."""
    verdict = request.verdict
    source = settings.external_url if settings is not None and settings.external_url else "tribunal"
    return {
        "specversion": "1.0",
        "type": CLOUDEVENT_TYPE,
        "source": source,
        "id": f"{verdict.evidence_id}/{request.rule}",
        "time": verdict.evaluated_at.isoformat().replace("+00:00", "Z"),
        "subject": verdict.subject.key(),
        "datacontenttype": "application/json",
        # Extension attributes (lower-case letters and digits), for receivers' filters.
        "tribunalkind": verdict.kind.value,
        "tribunaldecision": verdict.decision.value,
        "tribunalseverity": request.severity,
        "data": build_payload(request, "json", settings),
    }


def build_payload(
    request: ActionRequest, fmt: str = "json", settings: ActionSettings | None = None
) -> dict[str, Any]:
    """The JSON body for ``fmt`` (a pure function)."""
    verdict = request.verdict
    if fmt == "cloudevents":
        return build_cloudevent(request, settings)
    if fmt == "slack":
        subject = verdict.subject
        lines = "\n".join(f"• *{v.policy}* ({v.severity.value}): {v.msg}" for v in request.violations)
        context = f"rule `{request.rule}` · evidence `{verdict.kind.value}/{verdict.evidence_id}`"
        return {
            "text": summary(request)[:3000],
            "blocks": [
                {
                    "type": "header",
                    "text": {
                        "type": "plain_text",
                        "text": f"Tribunal {verdict.decision.value}: {subject.key()}"[:150],
                    },
                },
                {"type": "section", "text": {"type": "mrkdwn", "text": lines[:3000]}},
                {"type": "context", "elements": [{"type": "mrkdwn", "text": context}]},
            ],
        }
    payload: dict[str, Any] = {
        "source": "tribunal",
        "rule": request.rule,
        "summary": summary(request),
        "labels": alert_labels(request, request.policies[0]) if request.policies else {},
        "evidence_id": verdict.evidence_id,
        "kind": verdict.kind.value,
        "decision": verdict.decision.value,
        "severity": request.severity,
        "subject": verdict.subject.model_dump(exclude_none=True),
        "violations": violations_json(request),
        "policy_revision": verdict.policy_revision,
        "evaluated_at": verdict.evaluated_at.isoformat(),
    }
    url = verdict_url(settings.external_url if settings is not None else None, verdict.evidence_id)
    if url is not None:
        payload["url"] = url  # the verdict in the read API
    return payload


class Webhook:
    def __init__(self, deps: TargetDeps) -> None:
        self.settings = deps.settings
        self._http = deps.http

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    def _url(self, params: WebhookParams) -> str:
        url = params.url or self.settings.webhook_url
        if not url:
            raise ActionSkipped("no webhook URL (set params.url or TRIBUNAL_ACTIONS__WEBHOOK_URL)")
        return url

    def plan(self, request: ActionRequest) -> dict[str, Any]:
        params = request.params
        assert isinstance(params, WebhookParams)
        return {
            "would": f"POST {self._url(params)}",
            "payload": build_payload(request, params.format, self.settings),
        }

    async def run(self, request: ActionRequest) -> dict[str, Any]:
        params = request.params
        assert isinstance(params, WebhookParams)
        url = self._url(params)
        if self._http is None:
            raise ActionSkipped("no HTTP client is configured")
        session: aiohttp.ClientSession = self._http()
        payload = build_payload(request, params.format, self.settings)
        headers = {"Content-Type": CLOUDEVENTS_CONTENT_TYPE} if params.format == "cloudevents" else {}
        headers["Content-Type"] = headers.get("Content-Type", "application/json")
        try:
            async with session.post(
                url, data=orjson.dumps(payload), headers={**headers, **params.headers}
            ) as r:
                if r.status >= 300:
                    raise http_error("webhook", r.status, await r.text())
        except (TimeoutError, aiohttp.ClientConnectionError) as exc:
            raise http_target_error("webhook", exc) from None
        return {"url": url, "format": params.format}


def _build(deps: TargetDeps) -> ActionTarget:
    return Webhook(deps)


SPEC = TargetSpec("alert", "webhook", WebhookParams, _build)
