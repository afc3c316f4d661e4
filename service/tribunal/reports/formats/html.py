"""``html``: one self-contained page (no external resource): posture summary, trend charts drawn as
inline SVG, per-control status and, under each failing control, the resources and the evidence.

The page is the Jinja2 template ``templates/report.html.j2``, rendered with autoescape: every text
from the record is escaped there. This module computes only the charts' geometry."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from functools import cache
from typing import TYPE_CHECKING

from tribunal.reports.formats.base import Format
from tribunal.reports.model import ComplianceReport, ControlResult, ControlStatus, TrendPoint

if TYPE_CHECKING:  # Jinja2 is imported on the first HTML report, not by every command
    from jinja2 import Template

_COLORS = {
    ControlStatus.PASS: "#2e8b57",
    ControlStatus.FAIL: "#c0392b",
    ControlStatus.NOT_ASSESSED: "#8a94a6",
}


@dataclass(frozen=True, slots=True)
class _Bar:
    status: str
    n: int
    x: float
    w: float
    color: str


@dataclass(frozen=True, slots=True)
class _Posture:
    """A stacked bar of pass / fail / not-assessed controls."""

    width: int
    bars: list[_Bar]


@dataclass(frozen=True, slots=True)
class _Dot:
    x: float
    y: float
    day: date
    value: int


@dataclass(frozen=True, slots=True)
class _Trend:
    """A line chart with dots over days; without dots it says there is no data."""

    id: str
    title: str
    color: str
    dots: list[_Dot]
    top: int
    w: int = 540
    h: int = 220
    pad: int = 36

    @property
    def labelled(self) -> list[_Dot]:
        """The dots whose day is written under the axis: the first and the last."""
        return [self.dots[i] for i in sorted({0, len(self.dots) - 1})] if self.dots else []


@dataclass(frozen=True, slots=True)
class _Control:
    control: ControlResult
    failing: int
    has_detail: bool
    tally: str


def _posture(report: ComplianceReport) -> _Posture:
    s = report.summary
    width, x, bars = 560, 0.0, []
    counts = (
        (ControlStatus.PASS, s.passed),
        (ControlStatus.FAIL, s.failed),
        (ControlStatus.NOT_ASSESSED, s.not_assessed),
    )
    for status, n in counts:
        if not n:
            continue
        w = width * n / max(s.controls, 1)
        bars.append(_Bar(status.value, n, x, w, _COLORS[status]))
        x += w
    return _Posture(width, bars)


def _trend(chart_id: str, title: str, points: list[TrendPoint], attr: str, color: str) -> _Trend:
    chart = _Trend(chart_id, title, color, [], 1)
    if not points:
        return chart
    w, h, pad = chart.w, chart.h, chart.pad
    values = [int(getattr(p, attr)) for p in points]
    top = max(max(values), 1)
    step = (w - pad - 16) / max(len(points) - 1, 1)
    dots = [
        _Dot(pad + 4 + i * step, (h - pad) - (h - pad - 36) * v / top, p.day, v)
        for i, (p, v) in enumerate(zip(points, values, strict=True))
    ]
    return _Trend(chart_id, title, color, dots, top)


def _control(c: ControlResult) -> _Control:
    tally: dict[str, int] = {}
    for sc in c.scopes:
        tally[sc.status.value] = tally.get(sc.status.value, 0) + 1
    return _Control(
        control=c,
        failing=sum(len(s.failing) for s in c.scopes),
        has_detail=any(s.failing or s.excepted for s in c.scopes),
        tally=", ".join(f"{v} in {n} scope(s)" for v, n in sorted(tally.items())) or "no evidence judged",
    )


@cache
def _template() -> Template:
    from jinja2 import Environment, PackageLoader, StrictUndefined

    env = Environment(
        loader=PackageLoader("tribunal.reports.formats", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        keep_trailing_newline=True,
    )
    return env.get_template("report.html.j2")


def render(report: ComplianceReport) -> bytes:
    s, f = report.summary, report.filters
    score = f"{s.score:.1f}%" if s.score is not None else "n/a"
    page = _template().render(
        report=report,
        fw=report.framework,
        scope=f.namespace or "all namespaces",
        since=f" since {f.since:%Y-%m-%d %H:%M} UTC" if f.since else "",
        cards=[
            (score, "score (assessed controls passing)"),
            (s.passed, "controls passing"),
            (s.failed, "controls failing"),
            (s.not_assessed, "controls not assessed"),
            (s.failing_resources, "failing resources"),
            (s.verdicts, "verdicts judged"),
        ],
        posture_chart=_posture(report),
        trends=[
            _trend("trend-violations", "Violations per day", report.trend, "violations", "#c0392b"),
            _trend("trend-failing", "Failing controls per day", report.trend, "failing_controls", "#1f6fb2"),
        ],
        controls=[_control(c) for c in report.controls],
    )
    return page.encode()


FORMAT = Format("html", "text/html; charset=utf-8", ".html", render)
