"""What a figure draws, read off its artists, and what a PNG shows."""

from __future__ import annotations

import io
from pathlib import Path

from matplotlib.container import ErrorbarContainer
from matplotlib.figure import Figure
from matplotlib.image import imread


def assert_drawn(data: bytes | Path) -> None:
    """Not just a file: a PNG with real content on it."""
    raw = data.read_bytes() if isinstance(data, Path) else data
    assert raw[:8] == b"\x89PNG\r\n\x1a\n" and len(raw) > 5_000
    pixels = imread(io.BytesIO(raw))[..., :3]
    assert pixels.std() > 0.05
    assert (pixels < 0.95).any(axis=-1).mean() > 0.03


def error_bars(figure: Figure) -> dict[str, list[tuple[float, float, float]]]:
    """Each labelled errorbar series: (x, mean, half the bar) per point."""
    out = {}
    for container in figure.axes[0].containers:
        if isinstance(container, ErrorbarContainer):
            line, _, bars = container.lines
            halves = [0.0] * len(line.get_xdata())
            if bars:
                halves = [abs(seg[1][1] - seg[0][1]) / 2 for seg in bars[0].get_segments()]
            points = zip(line.get_xdata(), line.get_ydata(), halves, strict=True)
            out[container.get_label()] = [(float(x), float(y), float(h)) for x, y, h in points]
    return out


def legend_labels(figure: Figure) -> list[str]:
    return [text.get_text() for text in figure.axes[0].get_legend().get_texts()]
