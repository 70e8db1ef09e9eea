"""Shared plumbing for every movierec report: one figure style, PNG output and a self-contained HTML page.

Figures are built with ``matplotlib.figure.Figure`` directly (Agg rendering, no pyplot state), so reports
can run in threads, servers and tests without touching the global backend.
"""

from __future__ import annotations

import base64
import contextlib
import html
import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib
import seaborn as sns
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from movierec import atomic

FIGSIZE = (8.0, 5.0)
DPI = 110
PALETTE = sns.color_palette("deep")
MAIN_COLOR = PALETTE[0]
ACCENT_COLOR = PALETTE[3]

_RC: dict[str, Any] = {
    "font.size": 11,
    "axes.titlesize": 13,
    "axes.titleweight": "bold",
    "axes.labelsize": 11,
    "xtick.labelsize": 10,
    "ytick.labelsize": 10,
    "legend.fontsize": 10,
    "figure.dpi": DPI,
    "savefig.dpi": DPI,
    "savefig.bbox": "tight",
}


@contextlib.contextmanager
def report_style() -> Iterator[None]:
    """The look of every report figure (seaborn whitegrid + readable sizes), scoped to the block."""
    rc = {**sns.axes_style("whitegrid"), **sns.plotting_context("notebook"), **_RC}
    with matplotlib.rc_context(rc):
        yield


def new_figure(
    nrows: int = 1, ncols: int = 1, figsize: tuple[float, float] = FIGSIZE, **subplot_kw: Any
) -> tuple[Figure, Any]:
    """A figure not registered with pyplot, and its axes (one ``Axes`` or an array of them)."""
    fig = Figure(figsize=figsize, dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, **subplot_kw)
    return fig, axes


def figure_png(fig: Figure) -> bytes:
    """The figure rendered as PNG bytes."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def save_figure(fig: Figure, path: str | Path) -> bytes:
    """Write the figure as a PNG (atomically) and return the PNG bytes, e.g. to embed them too."""
    png = figure_png(fig)
    atomic.write_bytes(path, png)
    return png


def png_to_base64(png: bytes) -> str:
    return base64.b64encode(png).decode("ascii")


def img_tag(png: bytes, alt: str) -> str:
    """An ``<img>`` with the PNG embedded as a data: URI."""
    return f'<img src="data:image/png;base64,{png_to_base64(png)}" alt="{html.escape(alt)}">'


def html_table(rows: Sequence[tuple[str, str]], header: tuple[str, str] | None = None) -> str:
    """A two-column table of already formatted values (escaped here)."""
    head = ""
    if header:
        head = f"<thead><tr><th>{html.escape(header[0])}</th><th>{html.escape(header[1])}</th></tr></thead>"
    body = "".join(f"<tr><th scope='row'>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in rows)
    return f"<table>{head}<tbody>{body}</tbody></table>"


@dataclass(frozen=True)
class Section:
    """One part of a report page: a heading, an optional caption, and trusted HTML content."""

    title: str
    body_html: str
    caption: str = ""

    def render(self) -> str:
        caption = f"<p class='caption'>{html.escape(self.caption)}</p>" if self.caption else ""
        return f"<section><h2>{html.escape(self.title)}</h2>{caption}{self.body_html}</section>"


_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; max-width: 960px; margin: 2em auto;
       padding: 0 1em; color: #222; line-height: 1.45; }
h1 { font-size: 1.7em; margin-bottom: 0.2em; }
h2 { font-size: 1.25em; margin-top: 2em; border-bottom: 1px solid #ddd; padding-bottom: 0.2em; }
.caption { color: #555; margin: 0.3em 0 0.8em; }
.subtitle { color: #666; margin-top: 0; }
img { max-width: 100%; height: auto; display: block; }
table { border-collapse: collapse; margin: 0.5em 0; }
th, td { padding: 0.25em 0.9em; border-bottom: 1px solid #eee; text-align: left; }
td { text-align: right; font-variant-numeric: tabular-nums; }
"""


def html_page(title: str, sections: Sequence[Section], subtitle: str = "") -> str:
    """A complete, self-contained HTML document (inline CSS, embedded images)."""
    sub = f"<p class='subtitle'>{html.escape(subtitle)}</p>" if subtitle else ""
    body = "\n".join(section.render() for section in sections)
    return (
        "<!DOCTYPE html>\n<html lang='en'>\n<head>\n<meta charset='utf-8'>\n"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>\n"
        f"<title>{html.escape(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
        f"<h1>{html.escape(title)}</h1>\n{sub}\n{body}\n</body>\n</html>\n"
    )
