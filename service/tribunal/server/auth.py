"""Who may use which door of the server.

``/validate``, ``/healthz`` and ``/readyz`` are open: the API server and the kubelet call them;
``/openapi.json`` too (it describes the API and holds no data). Every other path (``/ingest/*``,
the read API, ``/metrics``) needs ``Authorization: Bearer <token>``:

- a static token: ``TRIBUNAL_INGEST_TOKEN`` opens ``/ingest/*`` (producers outside the cluster),
  ``TRIBUNAL_AUTH__READ_TOKEN`` the read API and ``/metrics``;
- with Kubernetes authentication (``TRIBUNAL_AUTH__KUBERNETES``), any token the API server accepts
  (TokenReview) whose user may use the path with the request's verb (a SubjectAccessReview on the
  non-resource URL, e.g. ``get`` on ``/metrics``), as kube-rbac-proxy checks it. Answers are cached
  for ``TRIBUNAL_AUTH__CACHE_SECONDS``.

No token or a token nobody accepts: 401. An accepted token whose user may not: 403. The cluster
unreachable while checking: 503 (retry). ``TRIBUNAL_AUTH__ANONYMOUS`` opens every door (``tribunal
dev`` on loopback); nothing else does.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

import orjson
from aiohttp import web
from prometheus_client import CollectorRegistry, Counter

log = logging.getLogger(__name__)

VALIDATE_PATH = "/validate"
OPEN_PATHS = frozenset({VALIDATE_PATH, "/healthz", "/readyz", "/openapi.json"})
INGEST_PREFIX = "/ingest/"
_MAX_CACHED = 10_000

K = TypeVar("K")
V = TypeVar("V")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Identity:
    """A user the API server vouched for (TokenReview's ``status.user``)."""

    username: str
    uid: str = ""
    groups: tuple[str, ...] = ()
    extra: Mapping[str, Sequence[str]] = field(default_factory=dict)


class ReviewUnavailable(RuntimeError):
    """The API server could not be asked (unreachable, timed out, 5xx): the caller may retry."""


@dataclass(frozen=True)
class ClientCertificates:
    """What ``POST /validate`` requires when the server asks for client certificates (mTLS with the
    API server, as Gatekeeper's --client-ca-name and --client-cn-name): a certificate the CA signed
    (the TLS handshake checked that) whose common name or a DNS name is one of ``names`` (any, when
    empty)."""

    names: frozenset[str] = frozenset()

    def check(self, request: web.Request) -> Refusal | None:
        peer = request.transport.get_extra_info("peercert") if request.transport is not None else None
        if not peer:
            return Refusal.unauthenticated("a client certificate signed by the API server's CA is required")
        if not self.names:
            return None
        common = {value for rdn in peer.get("subject", ()) for key, value in rdn if key == "commonName"}
        dns = {value for kind, value in peer.get("subjectAltName", ()) if kind == "DNS"}
        if (common | dns) & self.names:
            return None
        shown = ", ".join(sorted(common | dns)) or "no name"
        return Refusal(403, "forbidden", f"the client certificate ({shown}) is not one this webhook accepts")


class TokenReviewer(Protocol):
    """Checks bearer tokens against a cluster (server/kube_auth.py)."""

    async def authenticate(self, token: str) -> Identity | None: ...

    async def authorize(self, identity: Identity, path: str, verb: str) -> bool: ...


class AuthMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "tribunal_auth_requests",
            "Requests to authenticated paths, by result (allowed, unauthenticated, forbidden, unavailable).",
            ["result"],
            registry=registry,
        )


class Authenticator:
    """The aiohttp middleware that guards every path but :data:`OPEN_PATHS`."""

    def __init__(
        self,
        *,
        registry: CollectorRegistry,
        ingest_token: str | None = None,
        read_token: str | None = None,
        reviewer: TokenReviewer | None = None,
        anonymous: bool = False,
        cache_seconds: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        validate_clients: ClientCertificates | None = None,
    ) -> None:
        self.validate_clients = validate_clients
        self._ingest = _digest(ingest_token) if ingest_token else None
        self._read = _digest(read_token) if read_token else None
        self.reviewer = reviewer
        self.anonymous = anonymous
        self.cache_seconds = cache_seconds
        self._clock = clock
        self._identities: dict[bytes, tuple[float, Identity | None]] = {}
        self._decisions: dict[tuple[bytes, str, str], tuple[float, bool]] = {}
        self.metrics = AuthMetrics(registry)

    @property
    def enabled(self) -> bool:
        return not self.anonymous

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path == VALIDATE_PATH and self.validate_clients is not None:
            refusal = self.validate_clients.check(request)
            self.metrics.requests.labels(refusal.result if refusal else "allowed").inc()
            if refusal is not None:
                return refusal.response()
            return await handler(request)
        if self.anonymous or request.path in OPEN_PATHS:
            return await handler(request)
        problem = await self.check(request.headers.get("Authorization", ""), request.path, request.method)
        self.metrics.requests.labels(problem.result if problem else "allowed").inc()
        if problem is not None:
            return problem.response()
        return await handler(request)

    async def check(self, authorization: str, path: str, method: str) -> Refusal | None:
        """None when the request may go on, else why not."""
        scheme, _, credential = authorization.partition(" ")
        token = credential.strip()
        if scheme.lower() != "bearer" or not token:
            return Refusal.unauthenticated("a bearer token is required (Authorization: Bearer …)")
        if not token.isascii() or not token.isprintable():
            return Refusal.unauthenticated("the bearer token is not valid")
        digest = _digest(token)
        static = self._ingest if path.startswith(INGEST_PREFIX) else self._read
        if static is not None and hmac.compare_digest(digest, static):
            return None
        if self.reviewer is None:
            return Refusal.unauthenticated("the bearer token is not valid")
        verb = method.lower()
        try:
            identity = await self._identity(digest, token)
            if identity is None:
                return Refusal.unauthenticated("the bearer token is not valid")
            if not await self._allowed(digest, identity, path, verb):
                return Refusal(
                    403,
                    "forbidden",
                    f"user {identity.username!r} may not {verb} {path} (SubjectAccessReview)",
                )
        except ReviewUnavailable as exc:
            log.warning("cannot check a token with the API server: %s", exc)
            return Refusal(503, "unavailable", "the token cannot be checked now; retry")
        return None

    async def _identity(self, digest: bytes, token: str) -> Identity | None:
        now = self._clock()
        cached = self._identities.get(digest)
        if cached is not None and cached[0] > now:
            return cached[1]
        assert self.reviewer is not None
        identity = await self.reviewer.authenticate(token)
        _remember(self._identities, digest, (now + self.cache_seconds, identity))
        return identity

    async def _allowed(self, digest: bytes, identity: Identity, path: str, verb: str) -> bool:
        now = self._clock()
        key = (digest, path, verb)
        cached = self._decisions.get(key)
        if cached is not None and cached[0] > now:
            return cached[1]
        assert self.reviewer is not None
        allowed = await self.reviewer.authorize(identity, path, verb)
        _remember(self._decisions, key, (now + self.cache_seconds, allowed))
        return allowed


@dataclass(frozen=True)
class Refusal:
    status: int
    result: str
    message: str

    @classmethod
    def unauthenticated(cls, message: str) -> Refusal:
        return cls(401, "unauthenticated", message)

    def response(self) -> web.Response:
        response = web.Response(
            status=self.status, body=orjson.dumps({"error": self.message}), content_type="application/json"
        )
        if self.status == 401:
            response.headers["WWW-Authenticate"] = 'Bearer realm="tribunal"'
        return response


def _digest(token: str) -> bytes:
    """Tokens are compared and cached by their SHA-256, never kept in clear."""
    return hashlib.sha256(token.encode("utf-8")).digest()


def _remember(cache: dict[K, V], key: K, value: V) -> None:
    if len(cache) >= _MAX_CACHED:
        cache.clear()  # bounded: a flood of distinct tokens costs reviews, never memory
    cache[key] = value
