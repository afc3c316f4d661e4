"""An OPA server as the engine, over its REST API through ``opa-python-client``.

The policies run unchanged on OPA (docs/policies.md). Building the engine compiles the revision
locally (regorus) first, so Rego that does not compile never reaches OPA; then it pushes the revision:
every module with the Policy API (``PUT /v1/policies/tribunal/<path>``; modules of an earlier
revision that are gone are deleted), and every top-level data document with the Data API (``PUT
/v1/data/<key>``, replacing it whole). Each evaluation is one Data API query, ``POST
/v1/data/tribunal/lib/judge/<kind>`` with the policy input. OPA evaluates built-in errors as
undefined unless it runs with strict built-in errors, as regorus's RVM does (docs/policies.md).

An OPA that lost the policies (a restarted sidecar) answers the judge rule as undefined, which is never
read as "no violation": the revision is pushed again and the query repeated.

One OPA per Tribunal pod (a sidecar) is the model: the Policy API makes every module global to the
server, so replicas running different revisions must not share one. A connection failure or an OPA
error while judging is a PolicyEvaluationError naming the server, which the webhook's failure policy
answers; at build time it is a PolicyLoadError."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import orjson
import requests
from opa_client import OpaClient
from opa_client.errors import DeletePolicyError, RegoParseError, TypeException

from tribunal.policy.engine import EngineOptions
from tribunal.policy.errors import PolicyEvaluationError, PolicyLoadError
from tribunal.policy.loader import JUDGE_PACKAGE, Module, PolicySet
from tribunal.policy.regorus_engine import build_engine

# Every module Tribunal pushes has an id under this prefix; only those are ever deleted.
POLICY_ID_PREFIX = "tribunal/"


class OpaEngine:
    """Judges on the OPA server at ``options.opa_url`` (``http(s)://host[:port]``)."""

    name = "opa"

    def __init__(self, policy_set: PolicySet, options: EngineOptions) -> None:
        self.revision = policy_set.revision
        self._policy_set = policy_set
        # Compiled here first: OPA's Policy API has no transaction, and a revision it refused half-way
        # would leave it holding part of the new modules beside the old ones.
        build_engine(policy_set)  # the compiled engine is dropped at once, by this thread
        self.url, self._client = _client(options)
        try:
            self._push(policy_set)
        except requests.RequestException as exc:
            self._client.close_connection()
            raise PolicyLoadError(f"OPA server at {self.url}: cannot load the policies: {exc}") from None
        except PolicyLoadError:
            self._client.close_connection()
            raise

    def evaluate(self, kind: str, input_json: bytes) -> list[dict[str, Any]]:
        document = orjson.loads(input_json)
        result = self._query(kind, document)
        if result is None:
            # The judge rule is a set, defined (empty) whenever the policies are loaded: undefined means
            # OPA lost them (restarted, or another client replaced them). Read as "no violation", that
            # would allow everything; push the revision again and ask once more.
            try:
                self._push(self._policy_set)
            except (requests.RequestException, PolicyLoadError) as exc:
                raise PolicyEvaluationError(f"OPA server at {self.url} lost the policies: {exc}") from None
            result = self._query(kind, document)
        if result is None:
            raise PolicyEvaluationError(
                f"OPA server at {self.url}: data.{JUDGE_PACKAGE}.{kind} is undefined after the policies "
                "were pushed again"
            )
        if not isinstance(result, list):
            raise PolicyEvaluationError(
                f"OPA server at {self.url}: data.{JUDGE_PACKAGE}.{kind} is not a set of violations"
            )
        return result

    def close(self) -> None:
        self._client.close_connection()

    def _query(self, kind: str, document: Any) -> Any:
        """The judge rule's value for ``document``, None when OPA says it is undefined."""
        try:
            answer = self._client.query_rule(document, JUDGE_PACKAGE, kind)
        except requests.HTTPError as exc:
            raise PolicyEvaluationError(f"OPA server at {self.url}: {_opa_message(exc)}") from None
        except requests.RequestException as exc:
            raise PolicyEvaluationError(f"OPA server at {self.url} unreachable: {exc}") from None
        return answer.get("result") if isinstance(answer, dict) else None

    def _push(self, policy_set: PolicySet) -> None:
        wanted = {POLICY_ID_PREFIX + module.path: module for module in policy_set.modules}
        stale = [pid for pid in self._client.get_policies_list() if pid.startswith(POLICY_ID_PREFIX)]
        for policy_id in sorted(set(stale) - wanted.keys()):
            try:
                self._client.delete_policy(policy_id)
            except DeletePolicyError as exc:
                raise PolicyLoadError(f"OPA server at {self.url}: cannot delete {policy_id}: {exc}") from None
        # OPA compiles each uploaded module against those already loaded, so a policy sent before the
        # library it calls is refused ("undefined function"). Libraries go first; whatever is still
        # refused is sent again while each pass loads something, and the first refusal of a pass
        # that loads nothing is the module's own error.
        pending = sorted(wanted.items(), key=lambda item: (not item[1].path.startswith("lib/"), item[0]))
        while pending:
            refused: list[tuple[str, Module, RegoParseError]] = []
            for policy_id, module in pending:
                try:
                    self._client.update_policy_from_string(module.source, policy_id, rego_compat=False)
                except RegoParseError as exc:
                    refused.append((policy_id, module, exc))
            if len(refused) == len(pending):
                _, module, error = refused[0]
                raise PolicyLoadError(
                    f"{module.path}:{_rego_errors(error)} (OPA server at {self.url})"
                ) from None
            pending = [(policy_id, module) for policy_id, module, _ in refused]
        for key, document in sorted(policy_set.data.items()):
            try:
                self._client.update_or_create_data(document, key)
            except (RegoParseError, TypeException) as exc:
                raise PolicyLoadError(
                    f"data.{key}: OPA server at {self.url} did not take it "
                    f"(each top-level data document must be an object): {exc}"
                ) from None


def _client(options: EngineOptions) -> tuple[str, OpaClient]:
    """The server's base URL and a client for it; raises PolicyLoadError on a missing or bad URL."""
    url = (options.opa_url or "").rstrip("/")
    if not url:
        raise PolicyLoadError("engine 'opa' needs the OPA server's URL: set TRIBUNAL_OPA_URL")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path or parts.query:
        raise PolicyLoadError(
            f"TRIBUNAL_OPA_URL {url!r}: expected http(s)://host[:port], the server's root (no path)"
        )
    try:
        port = parts.port or (443 if parts.scheme == "https" else 8181)
    except ValueError as exc:
        raise PolicyLoadError(f"TRIBUNAL_OPA_URL {url!r}: {exc}") from None
    client = OpaClient(
        host=parts.hostname,
        port=port,
        ssl=parts.scheme == "https",
        token=options.opa_token,
        timeout=options.opa_timeout_seconds,
        retries=0,  # a retry belongs to the caller: the webhook has a deadline
    )
    return url, client


def _opa_message(exc: requests.HTTPError) -> str:
    """OPA's own error (``{"code", "message", "errors"}``), else the HTTP status."""
    response = exc.response
    try:
        body = response.json() if response is not None else None
    except ValueError:
        body = None
    if isinstance(body, dict) and body.get("message"):
        details = [e.get("message", "") for e in body.get("errors") or [] if isinstance(e, dict)]
        return "; ".join([f"{body.get('code', 'error')}: {body['message']}", *filter(None, details)])
    return str(exc)


def _rego_errors(exc: RegoParseError) -> str:
    """``row:col: message`` for each error OPA reported on a module, else its summary."""
    found = []
    for error in exc.errors:
        if not isinstance(error, dict):
            continue
        location = error.get("location") or {}
        where = f"{location.get('row')}:{location.get('col')}: " if location.get("row") else " "
        found.append(f"{where}{error.get('message', '')}")
    return "; ".join(found) if found else f" {exc.expression}: {exc.message}"
