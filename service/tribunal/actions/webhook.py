"""``alert`` to a generic webhook: ``POST`` JSON (the verdict and its matched violations), or a
Slack-compatible payload (``text`` + ``blocks``, for Slack incoming webhooks and look-alikes)."""

from __future__ import annotations

from typing import Any, Literal

import aiohttp
from pydantic import BaseModel, ConfigDict, Field

from tribunal.actions.alert import alert_labels, http_target_error, summary, violations_json
from tribunal.actions.base import (
    ActionRequest,
    ActionSkipped,
    ActionTarget,
    TargetDeps,
    TargetSpec,
    http_error,
)


class WebhookParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(None, description="Where to POST; default TRIBUNAL_ACTIONS__WEBHOOK_URL.")
    format: Literal["json", "slack"] = "json"
    headers: dict[str, str] = Field(default_factory=dict, description="Extra request headers.")


def build_payload(request: ActionRequest, fmt: str = "json") -> dict[str, Any]:
    """The JSON body for ``fmt`` (a pure function)."""
    verdict = request.verdict
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
    return {
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
        return {"would": f"POST {self._url(params)}", "payload": build_payload(request, params.format)}

    async def run(self, request: ActionRequest) -> dict[str, Any]:
        params = request.params
        assert isinstance(params, WebhookParams)
        url = self._url(params)
        if self._http is None:
            raise ActionSkipped("no HTTP client is configured")
        session: aiohttp.ClientSession = self._http()
        try:
            async with session.post(
                url, json=build_payload(request, params.format), headers=params.headers
            ) as r:
                if r.status >= 300:
                    raise http_error("webhook", r.status, await r.text())
        except (TimeoutError, aiohttp.ClientConnectionError) as exc:
            raise http_target_error("webhook", exc) from None
        return {"url": url, "format": params.format}


def _build(deps: TargetDeps) -> ActionTarget:
    return Webhook(deps)


SPEC = TargetSpec("alert", "webhook", WebhookParams, _build)
