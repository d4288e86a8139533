"""The bench's figures drawn as an SVG, with nothing but string formatting.

Four panels, each against the number of chargers: memory per idle socket,
throughput as a share of raw ``websockets``, decision p99 and
billed sessions per second (log scales); baselines and targets as dashed lines.
"""

import math
from collections.abc import Sequence
from html import escape

from moovolt.bench.runner import Results

WIDTH, HEIGHT = 340, 320
LEFT, RIGHT, TOP, BOTTOM = 56, 16, 40, 110
COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#7f7f7f", "#9467bd")

Series = tuple[str, Sequence[float], bool]  # name, values, dashed


def _nice_ticks(top: float) -> list[float]:
    """Return round tick values from 0 to at least ``top``."""
    raw = top / 4
    magnitude = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1.0
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    return [step * i for i in range(math.ceil(top / step) + 1)]


def _panel(
    title: str,
    unit: str,
    sizes: Sequence[int],
    series: Sequence[Series],
    x0: int,
    *,
    log: bool = False,
) -> list[str]:
    finite = [v for _, values, _ in series for v in values if v > 0]
    inner_w = WIDTH - LEFT - RIGHT
    inner_h = HEIGHT - TOP - BOTTOM
    if log:
        low = 10 ** math.floor(math.log10(min(finite, default=1.0)))
        high = 10 ** math.ceil(math.log10(max(finite, default=10.0)))
        ticks = [low * 10**i for i in range(round(math.log10(high / low)) + 1)]
    else:
        ticks = _nice_ticks(max(finite, default=1.0))

    def x(i: int) -> float:
        if len(sizes) == 1:
            return x0 + LEFT + inner_w / 2
        return x0 + LEFT + i * inner_w / (len(sizes) - 1)

    def y(value: float) -> float:
        if log:
            share = math.log10(value / ticks[0]) / math.log10(ticks[-1] / ticks[0])
        else:
            share = value / ticks[-1]
        return TOP + inner_h * (1 - share)

    parts = [
        f'<text x="{x0 + WIDTH / 2}" y="18" text-anchor="middle" '
        f'font-weight="bold">{escape(title)}</text>',
        f'<text x="{x0 + LEFT}" y="{TOP - 10}" font-size="10" text-anchor="middle">'
        f"{escape(unit)}</text>",
        f'<line x1="{x0 + LEFT}" y1="{TOP + inner_h}" x2="{x0 + WIDTH - RIGHT}" '
        f'y2="{TOP + inner_h}" stroke="black"/>',
        f'<line x1="{x0 + LEFT}" y1="{TOP}" x2="{x0 + LEFT}" y2="{TOP + inner_h}" '
        'stroke="black"/>',
    ]
    for value in ticks:
        parts.append(
            f'<text x="{x0 + LEFT - 4}" y="{y(value) + 3:.1f}" font-size="9" '
            f'text-anchor="end">{value:,g}</text>'
        )
    for i, size in enumerate(sizes):
        parts.append(
            f'<text x="{x(i):.1f}" y="{TOP + inner_h + 14}" font-size="10" '
            f'text-anchor="middle">{size:,}</text>'
        )
    parts.append(
        f'<text x="{x0 + WIDTH / 2}" y="{TOP + inner_h + 28}" font-size="10" '
        'text-anchor="middle">chargers</text>'
    )
    for number, (name, values, dashed) in enumerate(series):
        colour = COLOURS[number % len(COLOURS)]
        points = [(x(i), y(v)) for i, v in enumerate(values) if v > 0]
        dash = ' stroke-dasharray="5,3"' if dashed else ""
        if len(points) > 1:
            path = " ".join(f"{px:.1f},{py:.1f}" for px, py in points)
            parts.append(
                f'<polyline points="{path}" fill="none" stroke="{colour}" '
                f'stroke-width="2"{dash}/>'
            )
        for px, py in points:
            parts.append(f'<circle cx="{px:.1f}" cy="{py:.1f}" r="3" fill="{colour}"/>')
        legend_y = TOP + inner_h + 44 + 13 * number
        parts.append(
            f'<line x1="{x0 + LEFT}" y1="{legend_y - 4}" x2="{x0 + LEFT + 18}" '
            f'y2="{legend_y - 4}" stroke="{colour}" stroke-width="2"{dash}/>'
            f'<text x="{x0 + LEFT + 24}" y="{legend_y}" font-size="10">'
            f"{escape(name)}</text>"
        )
    return parts


def draw(results: Results) -> str:
    """Return the SVG of ``results``."""
    sizes = results.chargers
    gateway = [results.gateway.get(n) for n in sizes]
    echo = [results.echo.get(n) for n in sizes]
    sessions = [results.sessions.get(n) for n in sizes]
    nan = math.nan

    def share(attribute: str) -> list[float]:
        values = []
        for ours, raw in zip(gateway, echo, strict=True):
            if ours is None or raw is None or not getattr(raw, attribute):
                values.append(nan)
            else:
                values.append(100 * getattr(ours, attribute) / getattr(raw, attribute))
        return values

    base = results.baselines
    bare = base.bare_sessions_per_s if base else nan
    rpc_p99 = base.rpc_ms[1] if base else nan
    bare_p99 = base.bare_start_ms[1] if base else nan
    panels: list[tuple[str, str, list[Series], bool]] = [
        (
            "memory per idle socket",
            "KiB",
            [
                (
                    "moov.olt gateway",
                    [g.kib_per_socket if g else nan for g in gateway],
                    False,
                ),
                (
                    "raw websockets",
                    [e.kib_per_socket if e else nan for e in echo],
                    False,
                ),
                ("target 32 KiB", [32.0] * len(sizes), True),
            ],
            False,
        ),
        (
            "throughput per CPU-s, % of raw",
            "%",
            [
                ("heartbeats", share("heartbeats_per_cpu_s"), False),
                ("meter values", share("meters_per_cpu_s"), False),
                ("target 50 %", [50.0] * len(sizes), True),
            ],
            False,
        ),
        (
            "decision round trip p99",
            "ms",
            [
                (
                    "Authorize",
                    [s.authorize_ms[1] if s else nan for s in sessions],
                    False,
                ),
                ("start", [s.start_ms[1] if s else nan for s in sessions], False),
                ("target 100 ms", [100.0] * len(sizes), True),
                ("raw aio-pika RPC", [rpc_p99] * len(sizes), True),
                ("bare Temporal start", [bare_p99] * len(sizes), True),
            ],
            True,
        ),
        (
            "billed sessions per second",
            "sessions/s",
            [
                ("billed", [s.billed_per_s if s else nan for s in sessions], False),
                ("offered", [s.offered_per_s if s else nan for s in sessions], True),
                ("bare Temporal", [bare] * len(sizes), True),
            ],
            True,
        ),
    ]
    body: list[str] = []
    for number, (title, unit, series, log) in enumerate(panels):
        body += _panel(title, unit, sizes, series, number * WIDTH, log=log)
    total = WIDTH * len(panels)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{total}" '
        f'height="{HEIGHT}" font-family="sans-serif" font-size="11">'
        f'<rect width="{total}" height="{HEIGHT}" fill="white"/>'
        + "".join(body)
        + "</svg>\n"
    )
