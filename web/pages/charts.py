"""Charts drawn on the server as inline SVG: no script, no CDN, readable on a cheap
phone and printable. Each returns markup for a Jinja ``|safe`` insertion; every
text that comes from data is escaped here."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

WIDTH = 480  # narrow: on a phone the chart scales down less and stays legible
BLUE = "#2563eb"
GREEN = "#15803d"
RED = "#b91c1c"
GREY = "#94a3b8"
INK = "#1e293b"


def _svg(height: int, title: str, body: list[str]) -> str:
    return (
        f'<svg class="chart" viewBox="0 0 {WIDTH} {height}" role="img" '
        f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg" '
        f'font-family="sans-serif" font-size="12">'
        f"<title>{escape(title)}</title>{''.join(body)}</svg>"
    )


def score_distribution(
    scores: Sequence[float],
    promotion_line: float | None,
    elimination_line: float | None,
    *,
    title: str = "积分分布",
) -> str:
    """A histogram in 10-point bins with the promotion and elimination lines."""
    height, left, right, top, bottom = 260, 40, 16, 28, 36
    bins = [0] * 10
    for score in scores:
        bins[min(int(score // 10), 9)] += 1
    peak = max(bins) or 1
    plot_w, plot_h = WIDTH - left - right, height - top - bottom
    bar_w = plot_w / 10
    body = [
        f'<text x="{left}" y="16" fill="{INK}" font-weight="bold">{escape(title)}（{len(scores)} 人）</text>'
    ]
    for i, count in enumerate(bins):
        h = plot_h * count / peak
        x = left + i * bar_w
        y = top + plot_h - h
        body.append(
            f'<rect class="bar" x="{x + 2:.1f}" y="{y:.1f}" width="{bar_w - 4:.1f}" '
            f'height="{h:.1f}" fill="{BLUE}"><title>{i * 10}–{i * 10 + 10} 分：{count} 人</title></rect>'
        )
        if count:
            body.append(
                f'<text x="{x + bar_w / 2:.1f}" y="{y - 4:.1f}" text-anchor="middle" fill="{INK}">{count}</text>'
            )
        body.append(f'<text x="{x:.1f}" y="{height - bottom + 16}" fill="{INK}">{i * 10}</text>')
    body.append(
        f'<text x="{WIDTH - right - 18}" y="{height - bottom + 16}" fill="{INK}">100</text>'
    )
    body.append(
        f'<line x1="{left}" y1="{top + plot_h}" x2="{WIDTH - right}" y2="{top + plot_h}" stroke="{GREY}"/>'
    )
    for value, colour, label in (
        (promotion_line, GREEN, "重点骨干线"),
        (elimination_line, RED, "淘汰线"),
    ):
        if value is None:
            continue
        x = left + plot_w * value / 100
        body.append(
            f'<line class="line" x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{top + plot_h}" '
            f'stroke="{colour}" stroke-width="2" stroke-dasharray="6 3"/>'
            f'<text x="{x + 4:.1f}" y="{top + 12}" fill="{colour}">{label} {value:.1f}</text>'
        )
    return _svg(height, title, body)


@dataclass(frozen=True)
class DistrictBar:
    name: str
    coverage: float  # 0-1
    average: float | None  # 0-100


_AUTONOMOUS = re.compile(r"^(..)\w*?族\w*自治县$")


def short_name(name: str) -> str:
    """石柱土家族自治县 → 石柱县: the short form people use, so labels fit."""
    return _AUTONOMOUS.sub(r"\1县", name)


def district_bars(
    rows: Sequence[DistrictBar], *, title: str = "各区县村（社区）覆盖率与平均积分"
) -> str:
    """Per district: village coverage (bar) and the period's average score (dot)."""
    row_h, left, top = 22, 96, 40
    height = top + row_h * len(rows) + 24
    plot_w = WIDTH - left - 60
    body = [
        f'<text x="8" y="16" fill="{INK}" font-weight="bold">{escape(title)}</text>',
        f'<rect x="{left}" y="24" width="10" height="10" fill="{BLUE}"/>'
        f'<text x="{left + 14}" y="33" fill="{INK}">覆盖率</text>'
        f'<circle cx="{left + 80}" cy="29" r="5" fill="{GREEN}"/>'
        f'<text x="{left + 90}" y="33" fill="{INK}">平均积分</text>',
    ]
    for i, row in enumerate(rows):
        y = top + i * row_h
        w = plot_w * max(0.0, min(row.coverage, 1.0))
        body.append(
            f'<text x="{left - 6}" y="{y + 14}" text-anchor="end" fill="{INK}">{escape(short_name(row.name))}</text>'
        )
        body.append(
            f'<rect class="bar" x="{left}" y="{y + 3}" width="{w:.1f}" height="{row_h - 8}" fill="{BLUE}">'
            f"<title>{escape(row.name)} 覆盖率 {row.coverage * 100:.1f}%</title></rect>"
        )
        label = f"{row.coverage * 100:.0f}%"
        if row.average is not None:
            cx = left + plot_w * row.average / 100
            body.append(
                f'<circle class="dot" cx="{cx:.1f}" cy="{y + row_h / 2:.1f}" r="5" fill="{GREEN}">'
                f"<title>{escape(row.name)} 平均积分 {row.average:.1f}</title></circle>"
            )
            label += f" · {row.average:.0f}分"
        body.append(f'<text x="{left + plot_w + 4}" y="{y + 14}" fill="{INK}">{label}</text>')
    return _svg(height, title, body)


def score_trend(points: Sequence[tuple[str, float]], *, title: str = "近 12 个月积分") -> str:
    """A broker's score per period as a line with labelled points."""
    height, left, right, top, bottom = 220, 36, 16, 28, 40
    plot_w, plot_h = WIDTH - left - right, height - top - bottom
    body = [f'<text x="{left}" y="16" fill="{INK}" font-weight="bold">{escape(title)}</text>']
    for mark in (0, 60, 100):
        y = top + plot_h * (1 - mark / 100)
        body.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{WIDTH - right}" y2="{y:.1f}" stroke="{GREY}" '
            f'stroke-dasharray="{"" if mark == 0 else "2 3"}"/>'
            f'<text x="4" y="{y + 4:.1f}" fill="{INK}">{mark}</text>'
        )
    if not points:
        body.append(
            f'<text x="{WIDTH / 2}" y="{height / 2}" text-anchor="middle" fill="{GREY}">暂无积分记录</text>'
        )
        return _svg(height, title, body)
    step = plot_w / max(len(points) - 1, 1)
    coords = [
        (left + (i * step if len(points) > 1 else plot_w / 2), top + plot_h * (1 - score / 100))
        for i, (_, score) in enumerate(points)
    ]
    body.append(
        f'<polyline class="trend" fill="none" stroke="{BLUE}" stroke-width="2" '
        f'points="{" ".join(f"{x:.1f},{y:.1f}" for x, y in coords)}"/>'
    )
    for (period, score), (x, y) in zip(points, coords, strict=True):
        body.append(
            f'<circle class="dot" cx="{x:.1f}" cy="{y:.1f}" r="4" fill="{BLUE}"><title>{escape(period)}：{score:.1f} 分</title></circle>'
            f'<text x="{x:.1f}" y="{y - 8:.1f}" text-anchor="middle" fill="{INK}">{score:.0f}</text>'
            f'<text x="{x:.1f}" y="{height - 20}" text-anchor="middle" fill="{INK}">{escape(period[5:])}月</text>'
        )
    return _svg(height, title, body)
