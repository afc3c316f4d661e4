"""The HTTP read API: ``GET /verdicts``, ``GET /findings``, ``GET /evidence/{id}`` and
``GET /reports/compliance``, as aiohttp route definitions that ``app.py`` mounts on the one port.
Bad parameters answer 400 with ``{"error": ...}`` naming the parameter; 503 while the store has not
connected yet."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from tribunal.model import EvidenceKind
from tribunal.reports.builder import build_report, parse_since
from tribunal.reports.formats import FORMATS, get_format
from tribunal.reports.frameworks import FrameworkError, framework_ids, load_framework
from tribunal.store import FindingQuery, SqlStore, StoreError, VerdictQuery

_JSON = "application/json"
Q = TypeVar("Q", bound=BaseModel)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def _check_text(request: web.Request) -> None:
    """ValueError naming the first query parameter holding a NUL character: no stored text holds
    one, and PostgreSQL refuses it in a query (a 500 otherwise)."""
    for key, value in request.query.items():
        if "\x00" in key or "\x00" in value:
            raise ValueError(f"{key.replace(chr(0), '')}: must not hold a NUL character")


def _query(model: type[Q], request: web.Request, lists: tuple[str, ...] = ()) -> Q:
    _check_text(request)
    params: dict[str, Any] = {}
    for key in request.query:
        values = request.query.getall(key)
        if key in lists:
            params[key] = [v for value in values for v in value.split(",") if v]
        else:
            params[key] = values[-1]
    for key in ("since", "until"):
        if isinstance(params.get(key), str):
            params[key] = parse_since(params[key])
    return model.model_validate(params)


def _bad_request(exc: Exception) -> web.Response:
    if isinstance(exc, ValidationError):
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"]) or "query"
        return _error(400, f"{where}: {first['msg']}")
    return _error(400, str(exc))


def read_api_routes(
    store: SqlStore,
    rules_dir: Path,
    policy_kinds: Mapping[str, EvidenceKind] | Callable[[], Mapping[str, EvidenceKind]] | None = None,
) -> list[web.RouteDef]:
    """Routes over ``store``; reports read the catalogues of ``rules_dir/frameworks`` on each request
    (so edits apply without a restart). ``policy_kinds`` may be a callable, for hot-reloaded policies."""

    def kinds() -> Mapping[str, EvidenceKind] | None:
        return policy_kinds() if callable(policy_kinds) else policy_kinds

    async def verdicts(request: web.Request) -> web.Response:
        try:
            page = await store.verdicts(_query(VerdictQuery, request))
        except (ValidationError, ValueError, StoreError) as exc:
            return _bad_request(exc)
        return web.Response(body=page.model_dump_json(), content_type=_JSON)

    async def findings(request: web.Request) -> web.Response:
        try:
            page = await store.findings(_query(FindingQuery, request, lists=("policy",)))
        except (ValidationError, ValueError, StoreError) as exc:
            return _bad_request(exc)
        return web.Response(body=page.model_dump_json(), content_type=_JSON)

    async def verdict(request: web.Request) -> web.Response:
        evidence_id = request.match_info["evidence_id"]
        found = await store.get_verdict(evidence_id)
        if found is None:
            return _error(404, "verdict: no such evidence id")
        return web.Response(body=found.model_dump_json(), content_type=_JSON)

    async def evidence(request: web.Request) -> web.Response:
        evidence_id = request.match_info["evidence_id"]
        found = None if "\x00" in evidence_id else await store.get_evidence(evidence_id)
        if found is None:
            return _error(404, "evidence: no such id")
        if found.raw is None:
            return _error(410, f"evidence: its raw document was pruned at {found.pruned_at} (retention)")
        return web.Response(body=found.raw, content_type=_JSON)

    async def compliance(request: web.Request) -> web.Response:
        q = request.query
        framework_id = q.get("framework")
        if not framework_id:
            return _error(400, f"framework: required (one of {', '.join(framework_ids(rules_dir))})")
        try:
            _check_text(request)
            exporter = get_format(q.get("format", "json"))
            since = parse_since(q["since"]) if q.get("since") else None
            known = kinds()
            framework = load_framework(rules_dir, framework_id, known)
        except FrameworkError as exc:
            return _error(404 if "no such framework" in str(exc) else 500, f"framework: {exc}")
        except ValueError as exc:
            return _error(400, str(exc))
        report = await build_report(
            store, framework, policy_kinds=known, namespace=q.get("namespace"), since=since
        )
        media, _, charset = exporter.media_type.partition("; charset=")
        return web.Response(body=exporter.render(report), content_type=media, charset=charset or None)

    def connected(handler: Handler) -> Handler:
        """503 while the store has not connected yet (a server started during a database outage)."""

        async def handle(request: web.Request) -> web.StreamResponse:
            if not store.connected:
                return _error(503, f"the store is not connected yet: {store.probe()}")
            return await handler(request)

        return handle

    return [
        web.get("/verdicts", connected(verdicts)),
        web.get("/verdicts/{evidence_id}", connected(verdict)),
        web.get("/findings", connected(findings)),
        web.get("/evidence/{evidence_id}", connected(evidence)),
        web.get("/reports/compliance", connected(compliance)),
    ]


__all__ = ["FORMATS", "read_api_routes"]
