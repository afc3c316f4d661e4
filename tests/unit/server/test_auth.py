"""The authenticator's decisions and its cache, with a reviewer that counts its calls (the real
API server's TokenReview and SubjectAccessReview are in tests/e2e/test_auth.py)."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry

from tribunal.server import Authenticator, Identity, ReviewUnavailable


@dataclass
class CountingReviewer:
    tokens: dict[str, Identity]
    grants: set[tuple[str, str, str]]  # (username, path, verb)
    down: bool = False
    calls: list[str] = field(default_factory=list)

    async def authenticate(self, token: str) -> Identity | None:
        self.calls.append("TokenReview")
        if self.down:
            raise ReviewUnavailable("connection refused")
        return self.tokens.get(token)

    async def authorize(self, identity: Identity, path: str, verb: str) -> bool:
        self.calls.append("SubjectAccessReview")
        return (identity.username, path, verb) in self.grants


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


PROM = Identity("system:serviceaccount:monitoring:prometheus", groups=("system:serviceaccounts",))


def authenticator(reviewer: CountingReviewer, clock: Clock, **kw: object) -> Authenticator:
    return Authenticator(registry=CollectorRegistry(), reviewer=reviewer, cache_seconds=60, clock=clock, **kw)  # type: ignore[arg-type]


async def test_a_known_token_with_a_grant_passes_and_without_one_is_forbidden() -> None:
    reviewer = CountingReviewer({"prom-token": PROM}, {(PROM.username, "/metrics", "get")})
    auth = authenticator(reviewer, Clock())
    assert await auth.check("Bearer prom-token", "/metrics", "GET") is None
    refusal = await auth.check("Bearer prom-token", "/verdicts", "GET")
    assert refusal is not None and refusal.status == 403 and "may not get /verdicts" in refusal.message
    refusal = await auth.check("Bearer stolen", "/metrics", "GET")
    assert refusal is not None and refusal.status == 401


async def test_answers_are_cached_for_cache_seconds_then_asked_again() -> None:
    reviewer = CountingReviewer({"prom-token": PROM}, {(PROM.username, "/metrics", "get")})
    clock = Clock()
    auth = authenticator(reviewer, clock)
    for _ in range(5):
        assert await auth.check("Bearer prom-token", "/metrics", "GET") is None
    assert reviewer.calls == ["TokenReview", "SubjectAccessReview"]
    reviewer.grants.clear()  # the binding was removed
    clock.now += 61
    refusal = await auth.check("Bearer prom-token", "/metrics", "GET")
    assert refusal is not None and refusal.status == 403
    assert reviewer.calls.count("TokenReview") == 2


async def test_an_unreachable_api_server_is_503_and_not_cached() -> None:
    reviewer = CountingReviewer({"prom-token": PROM}, {(PROM.username, "/metrics", "get")}, down=True)
    auth = authenticator(reviewer, Clock())
    refusal = await auth.check("Bearer prom-token", "/metrics", "GET")
    assert refusal is not None and refusal.status == 503
    reviewer.down = False
    assert await auth.check("Bearer prom-token", "/metrics", "GET") is None


async def test_static_tokens_are_scoped_and_never_reach_the_api_server() -> None:
    reviewer = CountingReviewer({}, set())
    auth = authenticator(reviewer, Clock(), ingest_token="in", read_token="rd")
    assert await auth.check("Bearer in", "/ingest/trivy", "POST") is None
    assert await auth.check("Bearer rd", "/verdicts", "GET") is None
    assert reviewer.calls == []
    refusal = await auth.check("Bearer in", "/verdicts", "GET")  # not the read token: asked, unknown
    assert refusal is not None and refusal.status == 401


async def test_non_ascii_or_unprintable_tokens_are_refused_before_any_review() -> None:
    reviewer = CountingReviewer({}, set())
    auth = authenticator(reviewer, Clock(), read_token="rd")
    for header in ("Bearer tökén", "Bearer rd\x00", "Bearer r\u202ed"):
        refusal = await auth.check(header, "/verdicts", "GET")
        assert refusal is not None and refusal.status == 401
    assert reviewer.calls == []
