"""The HTML report in Debian's headless chromium: scripts run without console errors, the charts are
drawn, and a screenshot is not blank."""

from __future__ import annotations

import shutil
import subprocess
from datetime import UTC, date, datetime
from io import BytesIO
from pathlib import Path

import pytest
from PIL import Image

from tests import components
from tests.conftest import RULES_DIR
from tests.unit.reports.test_builder import Record, finding
from tribunal.model import EvidenceKind
from tribunal.reports import build_report, get_format, load_framework
from tribunal.store import ActivityRow, FindingStatus

CHROMIUM = shutil.which("chromium")


@pytest.fixture(autouse=True)
def _needs_chromium() -> None:
    if CHROMIUM is None:
        components.missing("chromium", "`make test` installs Debian's chromium")


class Trend(Record):
    async def daily_violations(self, policies, namespace=None, since=None):  # type: ignore[no-untyped-def]
        from tribunal.store import DailyViolationsRow

        return [
            DailyViolationsRow(
                day=date(2025, 5, d), namespace="shop", policy="privileged_containers", violations=d * 3 % 7
            )
            for d in range(1, 15)
        ]


def _chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    return subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--enable-logging=stderr", "--v=0",
         f"--user-data-dir={tmp_path / 'profile'}", *args],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


async def test_the_html_report_renders_with_charts_and_no_console_errors(tmp_path: Path) -> None:
    record = Trend(
        [finding("privileged_containers", "shop", f"web-{i}", FindingStatus.OPEN, []) for i in range(3)],
        [
            ActivityRow(
                day=date(2025, 5, d),
                namespace="shop",
                kind=EvidenceKind.ADMISSION,
                verdicts=10 + d,
                denied=d,
                warned=0,
            )
            for d in range(1, 15)
        ],
    )
    report = await build_report(
        record, load_framework(RULES_DIR, "pss-baseline"), now=datetime(2025, 5, 15, tzinfo=UTC)
    )
    page = tmp_path / "report.html"
    page.write_bytes(get_format("html").render(report))
    assert b"http://" not in page.read_bytes().replace(b"http://www.w3.org/2000/svg", b"")  # self-contained

    dom = _chromium(tmp_path, "--dump-dom", page.as_uri())
    assert dom.returncode == 0, dom.stderr
    console = [line for line in dom.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]
    assert console == []
    assert 'data-ready="yes"' in dom.stdout  # the page's script ran to its end
    for chart in ("posture-chart", "trend-violations", "trend-failing"):
        assert f'id="{chart}"' in dom.stdout
    assert dom.stdout.count("<circle") == 2 * 14  # one dot per day on each trend chart
    assert "default/Pod/web-0" not in dom.stdout and "shop/Pod/web-2" in dom.stdout

    shot = tmp_path / "shot.png"
    run = _chromium(tmp_path, f"--screenshot={shot}", "--window-size=1280,2000", page.as_uri())
    assert run.returncode == 0 and shot.is_file(), run.stderr
    image = Image.open(BytesIO(shot.read_bytes())).convert("RGB")
    assert image.size == (1280, 2000)
    colours = image.getcolors(maxcolors=1 << 20) or []
    assert len(colours) > 50  # text, badges and charts, not a blank page
    assert any(
        abs(r - 0xC0) < 8 and abs(g - 0x39) < 8 and abs(b - 0x2B) < 8 for _, (r, g, b) in colours
    )  # red: fail
