"""Policies: loading, the engine protocol and its backends, judging, hot reload and policy tests."""

from tribunal.policy.enforcement import EnforcementConfig, load_enforcement
from tribunal.policy.engine import EngineOptions, PolicyEngine, create_engine, engine_names
from tribunal.policy.errors import PolicyError, PolicyEvaluationError, PolicyLoadError
from tribunal.policy.evaluator import EvaluationTimeout, ThreadEvaluator
from tribunal.policy.judge import Judge
from tribunal.policy.loader import PolicyInfo, PolicySet, load_policy_set
from tribunal.policy.pool import Judged, JudgePool, JudgeSpec, Outcome, RawItem, Rejected
from tribunal.policy.runtime import PolicyRuntime, files_fingerprint
from tribunal.policy.testing import TestReport, TestResult, run_policy_tests

__all__ = [
    "EnforcementConfig",
    "EngineOptions",
    "EvaluationTimeout",
    "Judge",
    "JudgePool",
    "JudgeSpec",
    "Judged",
    "Outcome",
    "PolicyEngine",
    "PolicyError",
    "PolicyEvaluationError",
    "PolicyInfo",
    "PolicyLoadError",
    "PolicyRuntime",
    "PolicySet",
    "RawItem",
    "Rejected",
    "TestReport",
    "TestResult",
    "ThreadEvaluator",
    "create_engine",
    "engine_names",
    "files_fingerprint",
    "load_enforcement",
    "load_policy_set",
    "run_policy_tests",
]
