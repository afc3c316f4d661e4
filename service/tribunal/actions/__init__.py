"""Acting on verdicts: response rules (``rules/response/*.yaml``) choose actions; one module per action
target (annotate/label, event, quarantine, terminate, block-image, alert to Alertmanager, a webhook or
Kafka); the dispatcher runs them with retries, dedupe, a blast-radius guard and dry-run."""

from tribunal.actions.base import (
    PROTECTED_LABEL,
    ActionError,
    ActionRequest,
    ActionSkipped,
    ActionTarget,
    TargetDeps,
    TargetSpec,
)
from tribunal.actions.compose import build_dispatcher, policy_reloader
from tribunal.actions.dispatcher import Dispatcher, Outcome
from tribunal.actions.guard import BlastRadiusGuard, Deduper, DedupeWindows, DestructiveBudget
from tribunal.actions.images import ImageBlocklist, SharedBlocklist, StateError, normalize_image
from tribunal.actions.kafka import AlertPublisher, ProducerPublisher
from tribunal.actions.kube import KubeClient, KubeConnector
from tribunal.actions.registry import BUILTIN_TARGETS, default_registry
from tribunal.actions.rules import (
    ResponseRule,
    RulesError,
    RuleSet,
    RulesRuntime,
    TargetRegistry,
    load_rule_text,
    load_rules,
)

__all__ = [
    "BUILTIN_TARGETS",
    "PROTECTED_LABEL",
    "ActionError",
    "ActionRequest",
    "ActionSkipped",
    "ActionTarget",
    "AlertPublisher",
    "BlastRadiusGuard",
    "DedupeWindows",
    "Deduper",
    "DestructiveBudget",
    "Dispatcher",
    "ImageBlocklist",
    "KubeClient",
    "KubeConnector",
    "Outcome",
    "ProducerPublisher",
    "ResponseRule",
    "RuleSet",
    "RulesError",
    "RulesRuntime",
    "SharedBlocklist",
    "StateError",
    "TargetDeps",
    "TargetRegistry",
    "TargetSpec",
    "build_dispatcher",
    "default_registry",
    "load_rule_text",
    "load_rules",
    "normalize_image",
    "policy_reloader",
]
