"""Tribunal as a new user installs it (issue 25): the wheel, built once per session as `make wheel` builds
it, goes into a fresh virtual environment outside the checkout with the runtime dependencies of
requirements/runtime.lock (hash-checked), and every command runs from an empty folder on the policy
library and rules bundled inside the package, with no TRIBUNAL_* setting and no path to the checkout.

uv (the dev extra) installs the dependencies, from its cache after the first run; the build fetches
setuptools as `make wheel` does. The module takes about 40 s on 2 cores, a third of it `policy test` over
the whole library; every command has a deadline.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.components import missing

pytestmark = pytest.mark.slow

PROJECT = Path(__file__).resolve().parents[2]
LOCK = PROJECT / "requirements" / "runtime.lock"
# What setup.py and pyproject.toml need to build the wheel; nothing else of the checkout is copied.
SOURCE_FILES = ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md")
SOURCE_FOLDERS = ("service", "policies", "rules")

PRIVILEGED_POD = """\
apiVersion: v1
kind: Pod
metadata:
  name: web
  namespace: shop
spec:
  containers:
    - name: app
      image: nginx:latest
      securityContext:
        privileged: true
"""

FILL_STORE = """\
import asyncio, sys
from tribunal.app import build_policy_runtime, build_store
from tribunal.settings import Settings
from tribunal.sources import read_evidence
from tribunal.store import Record

async def main() -> None:
    settings = Settings()
    judge = build_policy_runtime(settings, []).judge
    records = [Record(ev, judge.judge(ev)) for path in sys.argv[1:] for ev in read_evidence(path)]
    store = build_store(settings)
    await store.start()
    try:
        await store.record(records)
    finally:
        await store.stop()
    print(f"recorded {len(records)}")

asyncio.run(main())
"""


def run(args: list[str | Path], *, cwd: Path, env: dict[str, str], timeout: float = 120) -> str:
    """Run a command; its stdout, or a failure with both of its outputs."""
    done = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    if done.returncode != 0:
        pytest.fail(f"{args} exited {done.returncode}\nstdout:\n{done.stdout}\nstderr:\n{done.stderr}")
    return done.stdout


def clean_env(**extra: str) -> dict[str, str]:
    """The environment less every TRIBUNAL_* setting and anything pointing Python at the checkout."""
    dropped = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRIBUNAL_") and k not in dropped}
    return {**env, **extra}


@pytest.fixture(scope="session")
def wheel_build(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(the wheel, the source it was built from): built once per session, as `make wheel` does
    (pip wheel, setuptools in an isolated build), from a copy of the checkout's files, so builds in
    the tree cannot interfere and the library bundled is the one the copy holds."""
    source = tmp_path_factory.mktemp("source")
    for name in SOURCE_FILES:
        shutil.copy2(PROJECT / name, source / name)
    skip = shutil.ignore_patterns("__pycache__", "*.egg-info", ".*")
    for folder in SOURCE_FOLDERS:
        shutil.copytree(PROJECT / folder, source / folder, ignore=skip)
    dist = tmp_path_factory.mktemp("dist")
    run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", dist, source],
        cwd=source,
        env=clean_env(),
        timeout=300,
    )
    (wheel,) = dist.glob("tribunal-*.whl")
    return wheel, source


@dataclass
class Installed:
    venv: Path
    home: Path  # an empty folder outside the checkout: every command runs there
    source: Path

    def bin(self, name: str) -> Path:
        return self.venv / "bin" / name


@pytest.fixture(scope="module")
def installed(wheel_build: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Installed:
    wheel, source = wheel_build
    uv = Path(sys.executable).parent / "uv"
    if not os.access(uv, os.X_OK):
        found = shutil.which("uv")
        if found is None:
            missing("uv", "the dev extra installs it (make test, or pip install -e '.[dev]')")
        uv = Path(found)
    root = tmp_path_factory.mktemp("user")
    assert not root.is_relative_to(PROJECT)
    venv, home = root / "venv", root / "work"
    home.mkdir()
    env = clean_env()
    run([sys.executable, "-m", "venv", "--without-pip", venv], cwd=home, env=env)
    python = venv / "bin" / "python"
    run(
        [uv, "pip", "install", "--quiet", "--python", python, "--require-hashes", "-r", LOCK],
        cwd=home,
        env=env,
    )
    run([uv, "pip", "install", "--quiet", "--python", python, "--no-deps", wheel], cwd=home, env=env)
    return Installed(venv, home, source)


def test_the_package_and_its_library_come_from_the_wheel(installed: Installed) -> None:
    out = run(
        [
            installed.bin("python"),
            "-c",
            "import tribunal; from tribunal.settings import Settings; s = Settings(); "
            "print(tribunal.__file__, s.policy_dir, s.rules_dir, sep='\\n')",
        ],
        cwd=installed.home,
        env=clean_env(),
    )
    package, policies, rules = (Path(line) for line in out.splitlines())
    site = installed.venv / "lib"
    assert package.is_relative_to(site), package
    assert policies == package.parent / "_bundled" / "policies"
    assert rules == package.parent / "_bundled" / "rules"
    assert (rules / "enforcement.yaml").is_file()
    frameworks = sorted(p.stem for p in (rules / "frameworks").glob("*.yaml"))
    assert frameworks == sorted(p.stem for p in (installed.source / "rules" / "frameworks").glob("*.yaml"))
    assert {"pss-baseline", "pss-restricted", "cis-k8s", "nsa-cisa"} <= set(frameworks)


def test_judge_a_manifest_from_an_empty_folder(installed: Installed) -> None:
    (installed.home / "pod.yaml").write_text(PRIVILEGED_POD)
    table = run(
        [installed.bin("tribunal"), "judge", "--format", "table", "pod.yaml"],
        cwd=installed.home,
        env=clean_env(),
    )
    assert re.search(r"^deny\s+admission\s+shop/Pod/web\s+pod\.yaml$", table, re.M), table
    assert re.search(r"- \[high/deny\] privileged_containers: containers/app is privileged", table), table
    assert "1 judged: 0 allow, 0 warn, 1 deny; 0 could not be judged" in table

    lines = run([installed.bin("tribunal"), "judge", "pod.yaml"], cwd=installed.home, env=clean_env())
    (verdict,) = (json.loads(line) for line in lines.splitlines())
    assert verdict["decision"] == "deny"
    privileged = next(v for v in verdict["violations"] if v["policy"] == "privileged_containers")
    assert "pss-baseline:privileged-containers" in privileged["controls"]
    assert {v["policy"] for v in verdict["violations"]} >= {"image_tag", "run_as_non_root"}


def test_a_missing_policy_folder_names_the_setting_and_the_fix(installed: Installed) -> None:
    (installed.home / "pod.yaml").write_text(PRIVILEGED_POD)
    done = subprocess.run(
        [installed.bin("tribunal"), "judge", "--policies", "my-policies", "pod.yaml"],
        cwd=installed.home,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1, done
    assert "policy_dir" in done.stderr and "my-policies: no such folder" in done.stderr, done.stderr
    assert "--policies" in done.stderr and "TRIBUNAL_POLICY_DIR" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


def test_policy_test_runs_every_test_of_the_bundled_library(installed: Installed) -> None:
    out = run(
        [installed.bin("tribunal"), "policy", "test", "-v"], cwd=installed.home, env=clean_env(), timeout=240
    )
    summary = re.search(r"^(\d+) passed, (\d+) failed$", out, re.M)
    assert summary, out
    tests = {
        (path.relative_to(installed.source).as_posix(), name)
        for path in (installed.source / "policies").rglob("*_test.rego")
        for name in re.findall(r"^(test_\w+)", path.read_text(), re.M)
    }
    assert (int(summary[1]), int(summary[2])) == (len(tests), 0), out
    passed = re.findall(r"^PASS data\.tribunal\.(\w+)\.", out, re.M)
    assert {"admission", "falco", "trivy", "lib"} <= set(passed), sorted(set(passed))  # every folder


def test_report_reads_a_store_the_installed_package_filled(installed: Installed) -> None:
    (installed.home / "pod.yaml").write_text(PRIVILEGED_POD)
    (installed.home / "fill.py").write_text(FILL_STORE)
    env = clean_env(TRIBUNAL_DATABASE_URL=f"sqlite+aiosqlite:///{installed.home / 'record.db'}")
    assert (
        run([installed.bin("python"), "fill.py", "pod.yaml"], cwd=installed.home, env=env) == "recorded 1\n"
    )

    out = run(
        [installed.bin("tribunal"), "report", "--framework", "pss-baseline", "--format", "json"],
        cwd=installed.home,
        env=env,
    )
    report = json.loads(out)
    assert report["framework"]["id"] == "pss-baseline"
    summary = report["summary"]
    assert summary["verdicts"] == 1 and summary["failing_resources"] == 1
    assert summary["failed"] >= 1 and summary["passed"] >= 1
    assert summary["passed"] + summary["failed"] + summary["not_assessed"] == summary["controls"]
    control = next(c for c in report["controls"] if c["id"] == "pss-baseline:privileged-containers")
    assert control["status"] == "fail"
    (scope,) = control["scopes"]
    assert scope["scope"] == "shop" and scope["status"] == "fail"
    assert "shop/Pod/web" in json.dumps(scope["failing"])
