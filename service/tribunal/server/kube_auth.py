"""Bearer tokens checked by the Kubernetes API server, as kube-rbac-proxy checks them: a TokenReview
says who the token belongs to, a SubjectAccessReview whether that user may use the path (a
non-resource URL) with the request's verb. Needs ``create`` on ``tokenreviews`` and
``subjectaccessreviews`` (the chart binds ``system:auth-delegator``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import aiohttp
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from tribunal.server.auth import Identity, ReviewUnavailable


class KubernetesTokenReviewer:
    """``api()`` returns the kubernetes-asyncio ``ApiClient`` to use (connected on first use).
    ``audiences``: what the tokens must be meant for (unset: the API server's own)."""

    def __init__(
        self,
        api: Callable[[], Awaitable[Any]],
        audiences: Sequence[str] = (),
        timeout_seconds: float = 5.0,
    ) -> None:
        self._api = api
        self.audiences = list(audiences)
        self.timeout_seconds = timeout_seconds

    async def authenticate(self, token: str) -> Identity | None:
        spec: dict[str, Any] = {"token": token}
        if self.audiences:
            spec["audiences"] = self.audiences
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": spec}
        review = await self._call("TokenReview", "AuthenticationV1Api", "create_token_review", body)
        status = review.get("status") or {}
        user = status.get("user") or {}
        if not status.get("authenticated") or not user.get("username"):
            return None
        return Identity(
            username=str(user["username"]),
            uid=str(user.get("uid") or ""),
            groups=tuple(str(g) for g in user.get("groups") or ()),
            extra={str(k): [str(v) for v in vs] for k, vs in (user.get("extra") or {}).items()},
        )

    async def authorize(self, identity: Identity, path: str, verb: str) -> bool:
        spec: dict[str, Any] = {
            "user": identity.username,
            "groups": list(identity.groups),
            "nonResourceAttributes": {"path": path, "verb": verb},
        }
        if identity.uid:
            spec["uid"] = identity.uid
        if identity.extra:
            spec["extra"] = {k: list(v) for k, v in identity.extra.items()}
        body = {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": spec}
        review = await self._call(
            "SubjectAccessReview", "AuthorizationV1Api", "create_subject_access_review", body
        )
        return bool((review.get("status") or {}).get("allowed"))

    async def _call(self, what: str, api_class: str, method: str, body: dict[str, Any]) -> dict[str, Any]:
        try:
            api = await self._api()
            call = getattr(getattr(client, api_class)(api), method)
            result = await call(body, _request_timeout=self.timeout_seconds)
            serialized: Any = api.sanitize_for_serialization(result)
        except ApiException as exc:
            raise ReviewUnavailable(f"{what}: the API server answered {exc.status} {exc.reason}") from None
        except (TimeoutError, aiohttp.ClientError, OSError, ConnectionError) as exc:
            raise ReviewUnavailable(f"{what}: {type(exc).__name__}: {exc}") from None
        return serialized if isinstance(serialized, dict) else {}
