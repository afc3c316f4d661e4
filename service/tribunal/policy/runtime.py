"""The live policy revision: load, compile, and hot-reload a policy directory with an atomic swap."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Iterable
from pathlib import Path

from tribunal.policy.enforcement import ENFORCEMENT_FILE, load_enforcement
from tribunal.policy.engine import EngineOptions
from tribunal.policy.errors import PolicyError
from tribunal.policy.judge import Judge
from tribunal.policy.loader import load_policy_set

log = logging.getLogger(__name__)


def files_fingerprint(paths: Iterable[Path]) -> str:
    """A hash of the paths with their modification times and sizes: it changes when one of them is
    edited, replaced, added or removed. Polling it is how hot reload notices (ConfigMap symlink swaps
    included) without reading the files."""
    digest = hashlib.sha256()
    for path in paths:
        try:
            stat = path.stat()
        except OSError:
            continue
        digest.update(f"{path}\0{stat.st_mtime_ns}\0{stat.st_size}\0".encode())
    return digest.hexdigest()


class PolicyRuntime:
    """Holds the current :class:`Judge`. A reload compiles the new revision completely before the swap;
    a revision that fails to load or compile leaves the running one in place and is reported in
    ``last_error``."""

    def __init__(
        self,
        policy_dir: Path | str,
        *,
        engine: str = "regorus",
        rules_dir: Path | str | None = None,
        extra_data: Iterable[Path] = (),
        engine_options: EngineOptions | None = None,
        allow_network: bool = False,
    ) -> None:
        self.policy_dir = Path(policy_dir)
        self.rules_dir = Path(rules_dir) if rules_dir is not None else None
        self.engine_name = engine
        self.engine_options = engine_options
        self.extra_data = tuple(Path(p) for p in extra_data)
        self.allow_network = allow_network
        self.last_error: str | None = None
        self._fingerprint = self._stat_fingerprint()
        self._judge = self._build()

    @property
    def judge(self) -> Judge:
        return self._judge

    @property
    def revision(self) -> str:
        return self._judge.revision

    def _build(self) -> Judge:
        policy_set = load_policy_set(self.policy_dir, self.extra_data, allow_network=self.allow_network)
        enforcement = load_enforcement(self.rules_dir)
        if self.rules_dir is not None:
            enforcement.check_policies(policy_set.policies, str(Path(self.rules_dir) / ENFORCEMENT_FILE))
        return Judge.build(policy_set, self.engine_name, enforcement, self.engine_options)

    def _watched_files(self) -> list[Path]:
        files = [p for p in self.policy_dir.rglob("*") if p.is_file()]
        if self.rules_dir is not None:
            files.append(self.rules_dir / ENFORCEMENT_FILE)
        return sorted([*files, *self.extra_data])

    def _stat_fingerprint(self) -> str:
        return files_fingerprint(self._watched_files())

    def reload(self, *, force: bool = False) -> bool:
        """Swap in the directory's current revision if the files changed; True when a swap happened."""
        fingerprint = self._stat_fingerprint()
        if not force and fingerprint == self._fingerprint:
            return False
        self._fingerprint = fingerprint
        try:
            judge = self._build()
        except PolicyError as exc:
            self.last_error = str(exc)
            log.error("policy reload failed, keeping revision %s: %s", self.revision, exc)
            return False
        self.last_error = None
        if judge.revision == self.revision:
            return False
        previous, self._judge = self._judge.revision, judge
        log.info("policies reloaded: revision %s -> %s", previous, judge.revision)
        return True

    async def watch(self, interval: float = 2.0) -> None:
        """Poll for changes every ``interval`` seconds until cancelled. Polling, not inotify: it sees
        ConfigMap volume updates (a symlink swap) as well as edits."""
        while True:
            await asyncio.sleep(interval)
            await asyncio.to_thread(self.reload)
