"""The action targets Tribunal ships. Adding a target: one module with a ``TargetSpec``, one line here."""

from __future__ import annotations

from tribunal.actions import alertmanager, annotate, block_image, event, kafka, quarantine, terminate, webhook
from tribunal.actions.base import TargetSpec
from tribunal.actions.rules import TargetRegistry

BUILTIN_TARGETS: tuple[TargetSpec, ...] = (
    annotate.ANNOTATE,
    annotate.LABEL,
    event.SPEC,
    quarantine.SPEC,
    terminate.SPEC,
    block_image.SPEC,
    alertmanager.SPEC,  # the default target of `alert`
    webhook.SPEC,
    kafka.SPEC,
)


def default_registry() -> TargetRegistry:
    return TargetRegistry(BUILTIN_TARGETS)
