"""Blocked images as policy data: ``data.tribunal.state.images``, kept in a JSON file the policy
runtime loads as extra data, so admission policies deny them, and a restart keeps them.

Each entry is keyed by the image digest when known, else by the normalised reference
(``docker.io/library/nginx:1.27``, as ``data.tribunal.lib.kubernetes.image_reference`` computes it)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import tempfile
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tribunal.model import TribunalError

log = logging.getLogger(__name__)

STATE_FILE = "images.json"


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
    replace). ``on_change`` runs after every change (e.g. the policy runtime's forced reload)."""

    def __init__(self, state_dir: Path | str, on_change: Callable[[], Awaitable[None]] | None = None) -> None:
        self.path = Path(state_dir) / STATE_FILE
        self.on_change = on_change
        self._lock = asyncio.Lock()
        self.entries: dict[str, dict[str, Any]] = self._load()

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
        async with self._lock:
            previous = self.entries.get(key)
            entry = {"image": image, "reference": reference, "digest": digest, **info}
            stable = ("image", "reference", "digest", "policies", "kind", "rule")
            if previous is not None and all(previous.get(k) == entry.get(k) for k in stable):
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
