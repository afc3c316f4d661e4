"""Blocked images as policy data: ``data.tribunal.state.images``, kept in a JSON file the policy
runtime loads as extra data, so admission policies deny them, and a restart keeps them.

Each entry is keyed by the image digest when known, else by the normalised reference
(``docker.io/library/nginx:1.27``, as ``data.tribunal.lib.kubernetes.image_reference`` computes it).

With a :class:`SharedBlocklist` (the database the replicas share: ``tribunal.store.shared``), the
database holds the truth and the file is this replica's copy of it, which the policy runtime reads:
blocks and clears are written to the database, which tells the other replicas (PostgreSQL's
LISTEN/NOTIFY), and every replica also reads it every ``poll_seconds``. While the database does not
answer, the last state read stays in force, and this replica's own blocks and clears take effect here
at once and are written to the database when it answers again."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import tempfile
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from tribunal.model import TribunalError

log = logging.getLogger(__name__)

STATE_FILE = "images.json"
# The fields that make a block the same block: blocking again with these unchanged changes nothing.
STABLE_FIELDS = ("image", "reference", "digest", "policies", "kind", "rule")


class Listening(Protocol):
    """A subscription to the shared blocklist's changes; ``alive`` turns False when its connection is
    lost."""

    @property
    def alive(self) -> bool: ...

    async def close(self) -> None: ...


class SharedBlocklist(Protocol):
    """The blocked images kept where every replica sees them (``tribunal.store.shared``)."""

    async def load(self) -> dict[str, dict[str, Any]]:
        """Every entry, by key."""
        ...

    async def put(self, key: str, entry: dict[str, Any], same_if: Sequence[str] = ()) -> bool:
        """Store ``entry`` at ``key``, unless the stored entry has the same ``same_if`` fields; whether
        it was stored."""
        ...

    async def delete(self, keys: Sequence[str]) -> list[str]:
        """Remove the entries ``keys``; the keys that were there."""
        ...

    async def listen(self, notify: Callable[[], None]) -> Listening | None:
        """Call ``notify`` whenever another writer changes the entries; None where the database cannot
        tell (SQLite: the poll alone follows)."""
        ...

    async def seed(self, entries: dict[str, dict[str, Any]]) -> int:
        """The first time any replica calls it on this database: store ``entries`` (the blocks a
        replica made before its state was shared); later calls do nothing. How many it stored."""
        ...


class StateError(TribunalError):
    """The blocked-images state file cannot be read or written."""


def normalize_image(image: str) -> tuple[str, str]:
    """(reference without digest, digest) of ``[registry/]repository[:tag][@digest]``: the registry
    defaults to docker.io and one-part Docker Hub names gain ``library/``, as in the Rego helpers."""
    name, _, digest = image.partition("@")
    last = name.rsplit("/", 1)[-1]
    tag = last.rsplit(":", 1)[1] if ":" in last else ""
    untagged = name[: -(len(tag) + 1)] if tag else name
    first, _, rest = untagged.partition("/")
    is_host = bool(rest) and ("." in first or ":" in first or first == "localhost")
    registry = first if is_host and first != "index.docker.io" else "docker.io"
    repository = rest if is_host else untagged
    if registry == "docker.io" and "/" not in repository:
        repository = f"library/{repository}"
    return f"{registry}/{repository}" + (f":{tag}" if tag else ""), digest


class ImageBlocklist:
    """The blocked images, loaded from and written through to ``<state_dir>/images.json`` (atomic
    replace). ``on_change`` runs after every change (e.g. the policy runtime's forced reload).

    With ``shared``, the entries follow the shared blocklist (see the module): ``start`` reads it
    (falling back on the file when it does not answer) and follows its changes until ``stop``; each
    call to it is bounded by ``timeout``."""

    def __init__(
        self,
        state_dir: Path | str,
        on_change: Callable[[], Awaitable[None]] | None = None,
        *,
        shared: SharedBlocklist | None = None,
        poll_seconds: float = 5.0,
        timeout: float = 5.0,
    ) -> None:
        self.path = Path(state_dir) / STATE_FILE
        self.on_change = on_change
        self.shared = shared
        self.poll_seconds = poll_seconds
        self.timeout = timeout
        self._lock = asyncio.Lock()
        self.entries: dict[str, dict[str, Any]] = self._load()
        # This replica's blocks (an entry) and clears (None) the shared blocklist has not taken yet.
        self._pending: dict[str, dict[str, Any] | None] = {}
        self._follower: asyncio.Task[None] | None = None
        self._listening: Listening | None = None
        self._wake = asyncio.Event()
        self._down = False  # the shared blocklist failed last time (logged once per outage)
        self._seeded = False
        self._generation = 0  # this replica's own blocks and clears so far (see ``sync``)

    def _load(self) -> dict[str, dict[str, Any]]:
        """Read the state file, creating an empty one when there is none (the policy runtime needs it)."""
        try:
            if not self.path.exists():
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._write({})
                return {}
            doc = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise StateError(f"{self.path}: cannot read blocked images: {exc}") from None
        images = (((doc or {}).get("tribunal") or {}).get("state") or {}).get("images")
        if not isinstance(images, dict):
            raise StateError(f"{self.path}: tribunal.state.images must be a mapping")
        return {str(k): v for k, v in images.items() if isinstance(v, dict)}

    def _write(self, entries: dict[str, dict[str, Any]]) -> None:
        body = json.dumps({"tribunal": {"state": {"images": entries}}}, indent=1, sort_keys=True)
        fd, tmp = tempfile.mkstemp(prefix=".images-", suffix=".tmp", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(body)
            os.replace(tmp, self.path)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise StateError(f"{self.path}: cannot write blocked images: {exc}") from None

    @property
    def held(self) -> set[str]:
        """Keys of this replica's blocks and clears that the shared blocklist has not taken yet."""
        return set(self._pending)

    def find(self, image: str | None, digest: str | None = None) -> list[str]:
        """Keys of the entries that block ``image`` (by reference) or ``digest``."""
        reference, own_digest = normalize_image(image) if image else ("", "")
        digest = digest or own_digest
        return [
            key
            for key, entry in self.entries.items()
            if (digest and entry.get("digest") == digest)
            or (reference and entry.get("reference") == reference)
        ]

    async def block(self, image: str, digest: str | None, **info: Any) -> tuple[str, bool]:
        """Record ``image`` as blocked; (key, whether the data changed)."""
        reference, own_digest = normalize_image(image)
        digest = digest or own_digest
        key = digest or reference
        entry = {"image": image, "reference": reference, "digest": digest, **info}
        if self.shared is not None:
            self._generation += 1
            entry["blocked_at"] = datetime.now(UTC).isoformat()
            try:
                async with asyncio.timeout(self.timeout):
                    changed = await self.shared.put(key, entry, STABLE_FIELDS)
            except Exception as exc:  # held here, written when the database answers again
                self._failed(exc)
                self._pending[key] = entry
                return key, await self._apply(
                    lambda e: {**e, key: entry}, f"image {image} blocked ({key}) here"
                )
            self._pending.pop(key, None)
            # This replica follows at once (the others on notice); an entry the database already
            # held the same is taken too when this replica had not read it yet.
            previous = self.entries.get(key)
            if changed or previous is None or any(previous.get(k) != entry.get(k) for k in STABLE_FIELDS):
                await self._apply(
                    lambda e: {**e, key: entry}, f"image {image} blocked ({key}) for every replica"
                )
            return key, changed
        async with self._lock:
            previous = self.entries.get(key)
            if previous is not None and all(previous.get(k) == entry.get(k) for k in STABLE_FIELDS):
                return key, False
            entry["blocked_at"] = datetime.now(UTC).isoformat()
            entries = {**self.entries, key: entry}
            await asyncio.to_thread(self._write, entries)
            self.entries = entries
        await self._changed()
        log.warning("image %s blocked (%s)", image, key)
        return key, True

    async def clear(self, keys: Iterable[str]) -> list[str]:
        """Remove the entries ``keys``; the keys actually removed."""
        if self.shared is not None:
            wanted = list(keys)
            if not wanted:
                return []
            self._generation += 1
            try:
                async with asyncio.timeout(self.timeout):
                    removed = await self.shared.delete(wanted)
            except Exception as exc:  # held here, written when the database answers again
                self._failed(exc)
                removed = [k for k in wanted if k in self.entries]
                self._pending.update(dict.fromkeys(removed))
                await self._apply(
                    lambda e: _without(e, removed), f"images unblocked here: {', '.join(removed)}"
                )
                return removed
            for k in wanted:
                self._pending.pop(k, None)
            await self._apply(
                lambda e: _without(e, wanted), f"images unblocked for every replica: {', '.join(removed)}"
            )
            return removed
        async with self._lock:
            removed = [k for k in keys if k in self.entries]
            if not removed:
                return []
            entries = {k: v for k, v in self.entries.items() if k not in removed}
            await asyncio.to_thread(self._write, entries)
            self.entries = entries
        await self._changed()
        log.warning("images unblocked: %s", ", ".join(removed))
        return removed

    async def _changed(self) -> None:
        if self.on_change is not None:
            await self.on_change()

    # ------------------------------------------------------------------------------------------
    # Following the shared blocklist

    async def start(self) -> None:
        """With a shared blocklist: read it now (the file stays in force when it does not answer),
        then follow it. Idempotent."""
        if self.shared is None or self._follower is not None:
            return
        await self._sync_quietly()
        self._follower = asyncio.create_task(self._follow(), name="tribunal-blocklist-follow")

    async def stop(self) -> None:
        if self._follower is not None:
            task, self._follower = self._follower, None
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._listening is not None:
            listening, self._listening = self._listening, None
            with contextlib.suppress(Exception):
                await listening.close()

    async def sync(self) -> bool:
        """Write this replica's held blocks and clears to the shared blocklist, then take its entries
        as this replica's (the file, then ``on_change``); whether they changed here. Raises when the
        shared blocklist does not answer."""
        shared = self.shared
        if shared is None:
            return False
        async with asyncio.timeout(self.timeout):
            if not self._seeded:
                if taken := await shared.seed(self.entries):
                    log.warning(
                        "the shared blocked images took the %d of %s (their first replica)", taken, self.path
                    )
                self._seeded = True
            for key, entry in list(self._pending.items()):
                if entry is None:
                    await shared.delete([key])
                else:
                    await shared.put(key, entry, STABLE_FIELDS)
                self._pending.pop(key, None)
            generation = self._generation
            entries = await shared.load()
        if self._down:
            self._down = False
            log.info("the shared blocked images answer again (%d entries)", len(entries))
        if generation != self._generation:  # read while this replica changed them: read again
            self._wake.set()
            return False
        if entries == self.entries:
            return False
        return await self._apply(
            lambda _: entries, f"blocked images follow the shared state ({len(entries)} entries)"
        )

    async def _sync_quietly(self) -> None:
        try:
            await self.sync()
        except Exception as exc:
            self._failed(exc)

    async def _apply(
        self, update: Callable[[dict[str, dict[str, Any]]], dict[str, dict[str, Any]]], message: str
    ) -> bool:
        """Make ``update(entries)`` this replica's entries (the file, then ``on_change``); whether they
        changed."""
        async with self._lock:
            entries = update(self.entries)
            if entries == self.entries:
                return False
            await asyncio.to_thread(self._write, entries)
            self.entries = entries
        await self._changed()
        log.warning("%s", message)
        return True

    def _failed(self, exc: BaseException) -> None:
        if not self._down:
            self._down = True
            log.warning(
                "the shared blocked images do not answer (%s): the last known %d stay in force here; "
                "this replica's blocks and clears are held until it answers",
                f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__,
                len(self.entries),
            )

    async def _follow(self) -> None:
        """Read the shared blocklist when told it changed, and every ``poll_seconds`` anyway."""
        assert self.shared is not None
        while True:
            if self._listening is None or not self._listening.alive:
                if self._listening is not None:
                    with contextlib.suppress(Exception):
                        await self._listening.close()
                    self._listening = None
                try:
                    async with asyncio.timeout(self.timeout):
                        self._listening = await self.shared.listen(self._wake.set)
                except Exception as exc:
                    self._failed(exc)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.poll_seconds):
                    await self._wake.wait()
            self._wake.clear()
            await self._sync_quietly()


def _without(entries: dict[str, dict[str, Any]], keys: Iterable[str]) -> dict[str, dict[str, Any]]:
    gone = set(keys)
    return {k: v for k, v in entries.items() if k not in gone}
