# ruff: noqa: E501  (markup reads better unwrapped)
"""``html``: one self-contained page (no external resource): posture summary, trend charts drawn as
inline SVG, per-control status and, under each failing control, the resources and the evidence."""

from __future__ import annotations

from html import escape

from tribunal.reports.formats.base import Format
from tribunal.reports.model import ComplianceReport, ControlResult, ControlStatus, Resource, TrendPoint

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1d2430;background:#f4f6f9}
header{background:#1d2430;color:#fff;padding:20px 32px}header h1{margin:0 0 4px;font-size:22px}
header p{margin:0;color:#b8c2d3}main{padding:20px 32px;max-width:1200px}
.cards{display:flex;gap:12px;flex-wrap:wrap;margin-bottom:16px}
.card{background:#fff;border-radius:8px;padding:12px 16px;min-width:130px;box-shadow:0 1px 2px #0002}
.card b{display:block;font-size:26px}.card span{color:#5b6677}
section{background:#fff;border-radius:8px;padding:16px;margin-bottom:16px;box-shadow:0 1px 2px #0002}
h2{margin:0 0 12px;font-size:17px}.charts{display:flex;gap:16px;flex-wrap:wrap}
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:6px 8px;border-bottom:1px solid #e3e7ee;
vertical-align:top}th{background:#eef1f6}.badge{display:inline-block;padding:1px 8px;border-radius:10px;color:#fff;
font-size:12px;font-weight:600}.pass{background:#2e8b57}.fail{background:#c0392b}.not-assessed{background:#8a94a6}
.excepted{background:#b9770e}details{margin:4px 0}summary{cursor:pointer}code{font-size:12px;background:#eef1f6;
padding:0 4px;border-radius:3px}.muted{color:#5b6677}.hidden{display:none}
"""

# Tiny and dependency-free: "show only failing controls".
_JS = """
document.body.dataset.ready = 'yes';
document.getElementById('only-failing').addEventListener('change', function (e) {
  document.querySelectorAll('tr.control').forEach(function (row) {
    row.classList.toggle('hidden', e.target.checked && row.dataset.status !== 'fail');
  });
});
"""

_COLORS = {
    ControlStatus.PASS: "#2e8b57",
    ControlStatus.FAIL: "#c0392b",
    ControlStatus.NOT_ASSESSED: "#8a94a6",
}


def _posture_svg(report: ComplianceReport) -> str:
    """A stacked bar of pass / fail / not-assessed controls."""
    s = report.summary
    width, x, parts = 560, 0.0, []
    for status, n in ((ControlStatus.PASS, s.passed), (ControlStatus.FAIL, s.failed), (ControlStatus.NOT_ASSESSED, s.not_assessed)):  # fmt: skip
        if not n:
            continue
        w = width * n / max(s.controls, 1)
        parts.append(
            f'<rect class="posture-{status.value}" x="{x:.1f}" y="0" width="{w:.1f}" height="28" '
            f'fill="{_COLORS[status]}"><title>{n} {status.value}</title></rect>'
        )
        if w > 40:
            parts.append(
                f'<text x="{x + w / 2:.1f}" y="19" fill="#fff" text-anchor="middle" font-size="13">{n}</text>'
            )
        x += w
    return (
        f'<svg id="posture-chart" role="img" aria-label="controls by status" width="{width}" height="28" '
        f'viewBox="0 0 {width} 28" xmlns="http://www.w3.org/2000/svg">{"".join(parts)}</svg>'
    )


def _trend_svg(chart_id: str, title: str, points: list[TrendPoint], attr: str, color: str) -> str:
    """A line chart with dots over days; the empty chart says there is no data."""
    w, h, pad = 540, 220, 36
    head = (
        f'<svg id="{chart_id}" class="trend-chart" role="img" aria-label="{escape(title)}" width="{w}" height="{h}" '
        f'viewBox="0 0 {w} {h}" xmlns="http://www.w3.org/2000/svg">'
        f'<text x="{pad}" y="16" font-size="13" font-weight="600">{escape(title)}</text>'
        f'<line x1="{pad}" y1="{h - pad}" x2="{w - 8}" y2="{h - pad}" stroke="#8a94a6"/>'
        f'<line x1="{pad}" y1="28" x2="{pad}" y2="{h - pad}" stroke="#8a94a6"/>'
    )
    if not points:
        return (
            head + f'<text x="{w / 2}" y="{h / 2}" text-anchor="middle" fill="#5b6677">no data</text></svg>'
        )
    values = [int(getattr(p, attr)) for p in points]
    top = max(max(values), 1)
    step = (w - pad - 16) / max(len(points) - 1, 1)

    def xy(i: int, v: int) -> tuple[float, float]:
        return pad + 4 + i * step, (h - pad) - (h - pad - 36) * v / top

    coords = [xy(i, v) for i, v in enumerate(values)]
    line = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
    dots = "".join(
        f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{color}"><title>{p.day}: {v}</title></circle>'
        for (x, y), p, v in zip(coords, points, values, strict=True)
    )
    labels = f'<text x="{pad - 4}" y="34" font-size="11" text-anchor="end">{top}</text>'
    labels += f'<text x="{pad - 4}" y="{h - pad}" font-size="11" text-anchor="end">0</text>'
    for i in sorted({0, len(points) - 1}):
        x, _ = coords[i]
        labels += (
            f'<text x="{x:.1f}" y="{h - pad + 16}" font-size="11" text-anchor="middle">{points[i].day}</text>'
        )
    return (
        head
        + f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{line}"/>{dots}{labels}</svg>'
    )


def _resources(resources: list[Resource], scope: str, excepted: bool = False) -> str:
    rows = []
    for r in resources:
        evidence = " ".join(f"<code>{escape(e)}</code>" for e in r.evidence_ids)
        status = (
            f' <span class="badge excepted">excepted: {escape(r.exception or "")}</span>' if excepted else ""
        )
        rows.append(
            f"<tr><td>{escape(scope)}</td><td><code>{escape(r.subject_key)}</code>{status}</td>"
            f"<td>{escape(r.policy)}</td><td>{escape(r.severity.value)}</td><td>{escape(r.message)}</td>"
            f"<td>{r.first_seen:%Y-%m-%d %H:%M}</td><td>{r.last_seen:%Y-%m-%d %H:%M}</td><td>{r.count}</td>"
            f'<td class="evidence">{evidence}</td></tr>'
        )
    return "".join(rows)


def _control(c: ControlResult) -> str:
    failing = sum(len(s.failing) for s in c.scopes)
    detail = "".join(_resources(s.failing, s.scope) + _resources(s.excepted, s.scope, True) for s in c.scopes)
    tally: dict[str, int] = {}
    for sc in c.scopes:
        tally[sc.status.value] = tally.get(sc.status.value, 0) + 1
    scopes = ", ".join(f"{v} in {n} scope(s)" for v, n in sorted(tally.items())) or "no evidence judged"
    body = (
        f'<details><summary>{failing} failing resource(s)</summary><table class="resources"><tr><th>scope</th>'
        "<th>resource</th><th>policy</th><th>severity</th><th>message</th><th>first seen</th><th>last seen</th>"
        f"<th>count</th><th>evidence</th></tr>{detail}</table></details>"
        if detail
        else f'<span class="muted">{scopes}</span>'
    )
    policies = ", ".join(escape(p) for p in c.policies) or '<span class="muted">none: not assessed</span>'
    return (
        f'<tr class="control" data-status="{c.status.value}" id="{escape(c.id)}"><td><code>{escape(c.id)}</code></td>'
        f"<td>{escape(c.title)}<div class='muted'>{escape(c.group)}</div></td>"
        f'<td><span class="badge {c.status.value}">{c.status.value}</span></td><td>{policies}</td><td>{body}</td></tr>'
    )


def render(report: ComplianceReport) -> bytes:
    s, f = report.summary, report.filters
    scope = escape(f.namespace) if f.namespace else "all namespaces"
    since = f" since {f.since:%Y-%m-%d %H:%M} UTC" if f.since else ""
    score = f"{s.score:.1f}%" if s.score is not None else "n/a"
    cards = "".join(
        f'<div class="card"><b>{v}</b><span>{label}</span></div>'
        for v, label in (
            (score, "score (assessed controls passing)"),
            (s.passed, "controls passing"),
            (s.failed, "controls failing"),
            (s.not_assessed, "controls not assessed"),
            (s.failing_resources, "failing resources"),
            (s.verdicts, "verdicts judged"),
        )
    )
    charts = _trend_svg("trend-violations", "Violations per day", report.trend, "violations", "#c0392b")
    charts += _trend_svg(
        "trend-failing", "Failing controls per day", report.trend, "failing_controls", "#1f6fb2"
    )
    rows = "".join(_control(c) for c in report.controls)
    fw = report.framework
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>{escape(fw.title)}: compliance report</title><style>{_CSS}</style></head>
<body><header><h1>{escape(fw.title)} {escape(fw.version)}</h1>
<p>Tribunal compliance report for {scope}{since}, generated {report.generated_at:%Y-%m-%d %H:%M} UTC</p></header>
<main><div class="cards">{cards}</div>
<section><h2>Posture</h2>{_posture_svg(report)}
<p class="muted">A control is <b>not assessed</b> when no policy evidences it or no evidence of its kind was judged;
it never counts as passing.</p></section>
<section><h2>Trends</h2><div class="charts">{charts}</div></section>
<section><h2>Controls</h2><label><input type="checkbox" id="only-failing"> only failing controls</label>
<table id="controls"><tr><th>control</th><th>title</th><th>status</th><th>policies</th><th>failing resources and evidence</th></tr>
{rows}</table></section></main><script>{_JS}</script></body></html>
"""
    return page.encode()


FORMAT = Format("html", "text/html; charset=utf-8", ".html", render)
