"""The runtime dependencies are locked (issue 25): requirements/runtime.lock pins every dependency of
pyproject.toml with hashes, requirements/build.lock pins what builds the wheel, and the Dockerfile and
`make run` install from them with --require-hashes, so the image builds the same twice."""

from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

PROJECT = Path(__file__).resolve().parents[2]
REQUIREMENTS = PROJECT / "requirements"
PYPROJECT = tomllib.loads((PROJECT / "pyproject.toml").read_text())


def parse_lock(path: Path) -> dict[str, tuple[str, set[str]]]:
    """A hash-pinned requirements file: canonical name -> (version, hashes)."""
    text = re.sub(r"\\\n", " ", path.read_text())  # join continued lines
    pins: dict[str, tuple[str, set[str]]] = {}
    for line in map(str.strip, text.splitlines()):
        if not line or line.startswith("#"):
            continue
        match = re.match(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;]+)", line)
        assert match, f"{path.name}: not an exact pin: {line[:80]}"
        hashes = set(re.findall(r"--hash=(sha256:[0-9a-f]{64})", line))
        assert hashes, f"{path.name}: {match[1]} has no hash"
        name = canonicalize_name(match[1])
        assert name not in pins, f"{path.name}: {name} pinned twice"
        pins[name] = (match[2], hashes)
    return pins


def docker_commands() -> list[list[str]]:
    """The Dockerfile's RUN commands, each split at && into words."""
    text = re.sub(r"\\\n", " ", (PROJECT / "Dockerfile").read_text())
    runs = [line.strip()[4:] for line in text.splitlines() if line.strip().startswith("RUN ")]
    return [shlex.split(part) for run in runs for part in run.split("&&")]


def pip_installs() -> list[list[str]]:
    return [c for c in docker_commands() if c[:2] == ["pip", "install"]]


@pytest.mark.parametrize("lock", ["runtime.lock", "build.lock"])
def test_every_pin_is_exact_and_hashed(lock: str) -> None:
    assert parse_lock(REQUIREMENTS / lock)


def test_every_runtime_dependency_is_pinned_in_the_lock() -> None:
    pins = parse_lock(REQUIREMENTS / "runtime.lock")
    for spec in PYPROJECT["project"]["dependencies"]:
        requirement = Requirement(spec)
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement.name} is not in requirements/runtime.lock: run `make lock`"
        version = pins[name][0]
        assert requirement.specifier.contains(version, prereleases=True), (
            f"runtime.lock pins {name}=={version}, outside pyproject.toml's {spec!r}: run `make lock`"
        )


def test_what_builds_the_wheel_is_pinned_in_the_build_lock() -> None:
    pins = parse_lock(REQUIREMENTS / "build.lock")
    for spec in PYPROJECT["build-system"]["requires"]:
        requirement = Requirement(spec)
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement.name} is not in requirements/build.lock: run `make lock`"
        assert requirement.specifier.contains(pins[name][0], prereleases=True)


def test_the_build_lock_changes_no_runtime_pin() -> None:
    """The image installs build.lock after runtime.lock: a package in both must be the same version."""
    runtime = parse_lock(REQUIREMENTS / "runtime.lock")
    for name, (version, _) in parse_lock(REQUIREMENTS / "build.lock").items():
        if name in runtime:
            assert runtime[name][0] == version, f"{name}: build.lock and runtime.lock pin different versions"


def test_the_engine_lock_and_the_runtime_lock_agree() -> None:
    runtime = parse_lock(REQUIREMENTS / "runtime.lock")
    for name, (version, hashes) in parse_lock(REQUIREMENTS / "engine.lock").items():
        assert runtime[name][0] == version, f"{name}: engine.lock and runtime.lock pin different versions"
        assert hashes <= runtime[name][1], f"{name}: engine.lock's hash is not among runtime.lock's"


def test_the_dockerfile_installs_every_dependency_from_the_locks_with_hashes() -> None:
    installs = pip_installs()
    locks = {c[c.index("-r") + 1].rsplit("/", 1)[-1] for c in installs if "-r" in c}
    assert locks == {"engine.lock", "runtime.lock", "build.lock"}, installs
    for command in installs:
        if "-r" in command:
            assert "--require-hashes" in command, command
        else:  # the package itself: nothing downloaded, built with build.lock's setuptools
            assert command[-1] == ".", command
            assert "--no-deps" in command and "--no-build-isolation" in command, command
    text = (PROJECT / "Dockerfile").read_text()
    for needed in ("requirements/runtime.lock", "setup.py", "COPY policies", "COPY rules"):
        assert needed in text, f"the Dockerfile does not copy {needed}"
    assert not re.search(r"^ENV .*TRIBUNAL_(POLICY|RULES)_DIR", text, re.M)  # the bundled defaults


def test_make_installs_the_runtime_lock_with_hashes() -> None:
    makefile = (PROJECT / "Makefile").read_text()
    assert re.search(r"^LOCK\s*:=\s*requirements/runtime\.lock$", makefile, re.M)
    installs = re.findall(r"^\t\$\(BIN\)/pip install .*-r \$\(LOCK\)$", makefile, re.M)
    assert len(installs) == 2 and all("--require-hashes" in i for i in installs), installs  # run and dev
