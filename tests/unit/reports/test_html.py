"""The HTML report's Jinja2 template: hostile text from the record (a resource's name, a violation's
message, an exception, the namespace asked for) is escaped, never markup; the template ships in the
package."""

from __future__ import annotations

from datetime import UTC, datetime
from html.parser import HTMLParser
from importlib.resources import files

from tests.unit.reports.test_builder import FRAMEWORK, Record, finding
from tribunal.reports import build_report, get_format
from tribunal.store import FindingStatus

HOSTILE = "\"'><script>alert(1)</script><img src=x onerror=alert(2)>&amp;"
NOW = datetime(2025, 5, 15, tzinfo=UTC)


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs += attrs


async def _page(namespace: str | None = None) -> str:
    open_ = finding("hostns", "a", "web", FindingStatus.OPEN, []).model_copy(
        update={"subject_key": f"a/Pod/{HOSTILE}", "msg": f"bad {HOSTILE}", "last_evidence_id": HOSTILE}
    )
    excepted = finding("hostns", "a", "db", FindingStatus.EXCEPTED, []).model_copy(
        update={"exception": f"ticket {HOSTILE}"}
    )
    framework = FRAMEWORK.model_copy(update={"title": f"CIS {HOSTILE}"})
    report = await build_report(Record([open_, excepted], []), framework, namespace=namespace, now=NOW)
    return get_format("html").render(report).decode()


async def test_hostile_text_in_the_record_is_escaped() -> None:
    page = await _page()
    assert "<script>alert" not in page and "<img" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt;&amp;amp;" in page
    # The title twice (<title>, <h1>); under both failing controls: the name, message, evidence, exception.
    assert page.count("&lt;script&gt;alert(1)") == 2 + 2 * 4
    parsed = _Tags()
    parsed.feed(page)
    assert parsed.tags.count("script") == 1  # the page's own
    assert "img" not in parsed.tags
    assert not any(name.startswith("on") for name, _ in parsed.attrs)


async def test_a_hostile_namespace_asked_for_is_escaped() -> None:
    page = await _page(namespace=HOSTILE)
    assert f"Tribunal compliance report for {HOSTILE}" not in page
    assert "Tribunal compliance report for &#34;&#39;&gt;&lt;script&gt;alert(1)" in page


async def test_the_page_keeps_its_structure() -> None:
    page = await _page()
    assert page.startswith('<!DOCTYPE html>\n<html lang="en">') and page.endswith("</body></html>\n")
    for marker in ('id="posture-chart"', 'id="trend-violations"', 'id="trend-failing"', 'id="controls"',
                   'id="only-failing"', '<tr class="control" data-status="fail" id="cis:pid">',
                   '<span class="badge excepted">excepted: ticket'):  # fmt: skip
        assert marker in page


def test_the_template_ships_in_the_package() -> None:
    template = files("tribunal.reports.formats").joinpath("templates", "report.html.j2")
    assert template.is_file() and "autoescape" in template.read_text()
