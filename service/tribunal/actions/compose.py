"""Building the dispatcher from Settings, for the composition root (``app.py``)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import aiohttp
from prometheus_client import CollectorRegistry

from tribunal.actions.base import ActionTarget, TargetDeps, TargetSpec
from tribunal.actions.dispatcher import Dispatcher
from tribunal.actions.guard import DedupeWindows, DestructiveBudget
from tribunal.actions.images import ImageBlocklist
from tribunal.actions.kafka import AlertPublisher
from tribunal.actions.kube import KubeClient, KubeConnector
from tribunal.actions.registry import BUILTIN_TARGETS
from tribunal.actions.rules import RulesRuntime, TargetRegistry
from tribunal.policy import PolicyRuntime
from tribunal.settings import Settings


def policy_reloader(runtime: PolicyRuntime) -> Callable[[], Awaitable[None]]:
    """What ``ImageBlocklist.on_change`` should be: recompile the policies (with the new state file) off
    the event loop."""

    async def reload() -> None:
        await asyncio.to_thread(runtime.reload, force=True)

    return reload


def build_dispatcher(
    settings: Settings,
    registry: CollectorRegistry,
    *,
    blocklist: ImageBlocklist | None = None,
    http: aiohttp.ClientSession | None = None,
    publisher: AlertPublisher | None = None,
    kube: Callable[[], Awaitable[KubeClient]] | None = None,
    specs: tuple[TargetSpec, ...] = BUILTIN_TARGETS,
    dedupe: DedupeWindows | None = None,
    budget: DestructiveBudget | None = None,
) -> Dispatcher:
    """The dispatcher of ``tribunal serve``: rules from ``settings.rules_dir/response``, cluster
    actions through kubernetes-asyncio (connected on first use), alerts through ``http`` (a session
    of its own when None), ``publisher`` for the Kafka alerts topic, ``blocklist`` for block-image
    (made from ``settings.actions.state_dir`` when None); ``dedupe`` and ``budget`` share the dedupe
    windows and the blast-radius budget between replicas (None: kept in this process)."""
    closers: list[Callable[[], Awaitable[None]]] = []
    if kube is None:
        connector = KubeConnector(settings.actions)
        kube = connector.client
        closers.append(connector.close)
    session_box: list[aiohttp.ClientSession] = [http] if http is not None else []

    def session() -> aiohttp.ClientSession:
        if not session_box:  # made on first use, inside the running loop
            timeout = aiohttp.ClientTimeout(total=settings.actions.timeout_seconds)
            session_box.append(aiohttp.ClientSession(timeout=timeout))

            async def close() -> None:
                await session_box[0].close()

            closers.append(close)
        return session_box[0]

    deps = TargetDeps(
        settings=settings.actions,
        kube=kube,
        http=session,
        blocklist=blocklist if blocklist is not None else ImageBlocklist(settings.actions.state_dir),
        publisher=publisher,
        alertmanager_url=settings.alertmanager_url,
    )
    target_registry = TargetRegistry(specs)
    targets: dict[tuple[str, str], ActionTarget] = {(s.action, s.name): s.build(deps) for s in specs}
    exempt = set(settings.exempt_namespaces) | ({settings.namespace} if settings.namespace else set())

    async def close_all() -> None:
        for close in reversed(closers):
            await close()

    return Dispatcher(
        RulesRuntime(settings.rules_dir, target_registry),
        targets,
        settings.actions,
        registry,
        dry_run=settings.dry_run,
        exempt_namespaces=exempt,
        reload_interval=settings.policy_reload_interval,
        closers=[close_all],
        dedupe=dedupe,
        budget=budget,
        shared_timeout=settings.actions.shared_state_timeout_seconds,
    )
