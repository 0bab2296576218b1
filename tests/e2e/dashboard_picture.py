"""Draws the panels of the Grafana dashboard from Prometheus's answers (query_range) into a PNG: the same
layout and queries, lines drawn as SVG by this module and photographed by Chromium. Not Grafana's own
rendering; every point is one Prometheus returned in the run that calls it."""

from __future__ import annotations

import html
import json
import math
import shutil
import time
from pathlib import Path
from typing import Any

import aiohttp
from playwright.async_api import async_playwright

COLOURS = ["#73bf69", "#f2cc0c", "#5794f2", "#ff9830", "#f2495c", "#b877d9", "#8ab8ff", "#fade2a"]
ROW = 34
"""Pixels of one unit of a panel's height (Grafana's grid)."""
WIDTH = 1600
LEGEND_LINE = 16
"""Pixels of one line of a panel's legend."""


async def draw(
    http: aiohttp.ClientSession,
    base: str,
    dashboard_file: Path,
    variables: dict[str, str],
    started: float,
    picture: Path,
) -> None:
    dashboard = json.loads(dashboard_file.read_text(encoding="utf-8"))
    end = time.time()
    cells = []
    for panel in dashboard["panels"]:
        series = []
        for target in panel.get("targets", []):
            expr = target["expr"]
            for variable, value in variables.items():
                expr = expr.replace(variable, value)
            for item in await _range(http, base, expr, started, end):
                series.append((_legend(target.get("legendFormat", ""), item["metric"]), item["values"]))
        cells.append(_cell(panel, series, started, end))
    page = (
        "<!doctype html><meta charset=utf-8><style>"
        "body{margin:0;background:#111217;color:#ccccdc;font:13px sans-serif}"
        f".grid{{position:relative;width:{WIDTH}px}}"
        ".p{position:absolute;box-sizing:border-box;border:1px solid #2c3235;background:#181b1f;padding:6px 8px}"
        ".p h3{margin:0 0 4px;font-size:13px;color:#d8d9da}.row{color:#d8d9da;font-size:15px;font-weight:600}"
        f".legend{{line-height:{LEGEND_LINE}px}}.legend span{{margin-right:12px;white-space:nowrap}}"
        ".stat{font-size:26px;font-weight:600;margin:8px 6px}"
        "</style>"
        f"<h2 style='margin:10px 8px'>{html.escape(dashboard['title'])}</h2>"
        f"<div class=grid>{''.join(cells)}</div>"
    )
    picture.parent.mkdir(parents=True, exist_ok=True)
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    assert chromium is not None, "drawing the picture needs Chromium (make browser installs it)"
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"])
        try:
            page_ = await browser.new_page(viewport={"width": WIDTH, "height": 900})
            await page_.set_content(page)
            await page_.screenshot(path=str(picture), full_page=True)
        finally:
            await browser.close()


async def _range(http: aiohttp.ClientSession, base: str, expr: str, start: float, end: float) -> list[dict[str, Any]]:
    params = {"query": expr, "start": str(start), "end": str(end), "step": "2"}
    async with http.get(f"{base}/api/v1/query_range", params=params) as response:
        body = await response.json()
    assert body["status"] == "success", (expr, body)
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def _legend(template: str, labels: dict[str, str]) -> str:
    text = template
    for name, value in labels.items():
        text = text.replace("{{" + name + "}}", value)
    return text or ", ".join(f"{k}={v}" for k, v in labels.items()) or "value"


def _cell(panel: dict[str, Any], series: list[tuple[str, list[list[Any]]]], start: float, end: float) -> str:
    grid = panel["gridPos"]
    column = WIDTH / 24
    box = (
        f"left:{grid['x'] * column:.0f}px;top:{grid['y'] * ROW}px;"
        f"width:{grid['w'] * column:.0f}px;height:{grid['h'] * ROW}px"
    )
    title = html.escape(panel["title"])
    if panel["type"] == "row":
        return f"<div class='p row' style='{box};border:none;background:none'>{title}</div>"
    unit = panel["fieldConfig"]["defaults"].get("unit", "short")
    if panel["type"] == "stat":
        values = "".join(
            f"<div class=stat style='color:{COLOURS[i % len(COLOURS)]}'>{_format(_last(points), unit)}"
            f" <small style='font-size:13px;color:#8e8e8e'>{html.escape(name)}</small></div>"
            for i, (name, points) in enumerate(series)
        )
        return f"<div class=p style='{box}'><h3>{title}</h3>{values or 'No data'}</div>"
    width = grid["w"] * column - 18
    # The legend wraps as Grafana's list legend does; the chart gives up the height of its extra lines.
    height = grid["h"] * ROW - 62 - (_legend_lines([name for name, _ in series], width) - 1) * LEGEND_LINE
    return f"<div class=p style='{box}'><h3>{title}</h3>{_chart(series, start, end, width, height, unit)}</div>"


def _legend_lines(names: list[str], width: float) -> int:
    """Lines the legend takes, by an estimate of its entries' widths (13 px sans-serif)."""
    lines, used = 1, 0.0
    for name in names:
        entry = (len(name) + 2) * 6.6 + 12
        if used and used + entry > width:
            lines, used = lines + 1, 0.0
        used += entry
    return lines


def _last(points: list[list[Any]]) -> float:
    return float(points[-1][1]) if points else math.nan


def _chart(
    series: list[tuple[str, list[list[Any]]]], start: float, end: float, width: float, height: float, unit: str
) -> str:
    finite = [float(v) for _, points in series for _, v in points if math.isfinite(float(v))]
    if not finite:
        return "<div style='color:#8e8e8e'>No data</div>"
    top = max(max(finite), 0.0) or 1.0
    left = 56
    lines, legend = [], []
    for i, (name, points) in enumerate(series):
        colour = COLOURS[i % len(COLOURS)]
        coordinates = " ".join(
            f"{left + (float(t) - start) / (end - start) * (width - left):.1f},"
            f"{height - 14 - float(v) / top * (height - 24):.1f}"
            for t, v in points
            if math.isfinite(float(v))
        )
        lines.append(f"<polyline fill=none stroke='{colour}' stroke-width=1.6 points='{coordinates}'/>")
        legend.append(f"<span style='color:{colour}'>&#9644; {html.escape(name)}</span>")
    axis = "".join(
        f"<text x=0 y={height - 14 - share * (height - 24) + 4:.1f} fill='#8e8e8e' font-size=11>"
        f"{_format(top * share, unit)}</text>"
        f"<line x1={left} x2={width} y1={height - 14 - share * (height - 24):.1f} "
        f"y2={height - 14 - share * (height - 24):.1f} stroke='#2c3235'/>"
        for share in (0.0, 0.5, 1.0)
    )
    seconds = f"<text x={left} y={height} fill='#8e8e8e' font-size=11>{end - start:.0f} s of the run</text>"
    return (
        f"<svg width={width:.0f} height={height:.0f}>{axis}{''.join(lines)}{seconds}</svg>"
        f"<div class=legend>{' '.join(legend)}</div>"
    )


def _format(value: float, unit: str) -> str:
    if not math.isfinite(value):
        return "-"
    if unit == "s":
        return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.1f} s"
    if unit == "percentunit":
        return f"{value * 100:.1f}%"
    suffix = {"ops": "/s", "reqps": " req/s"}.get(unit, "")
    return f"{value:.3g}{suffix}"
