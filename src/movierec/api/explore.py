"""``eda``: what `movierec eda` reports about a dataset, as a result to look at in a notebook."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from movierec.api.data import Data
from movierec.reports.eda import FIGURES, EdaData, build_eda_report, summarise
from movierec.reports.figures import report_style

if TYPE_CHECKING:
    from matplotlib.figure import Figure

FIGURE_NAMES = tuple(spec.stem for spec in FIGURES)


@dataclass(frozen=True)
class Eda:
    """The headline numbers of a dataset and its figures (rating distribution, long tail, popularity bias, ...)."""

    data: Data = field(repr=False)
    summary: EdaData = field(repr=False)

    @property
    def figures(self) -> tuple[str, ...]:
        """The names ``plot`` takes."""
        return FIGURE_NAMES

    def plot(self, name: str) -> Figure:
        """One figure of the report by name (one of ``figures``)."""
        for spec in FIGURES:
            if spec.stem == name:
                with report_style():
                    return spec.plot(self.summary)
        raise ValueError(f"no figure {name!r}; the figures are: {', '.join(FIGURE_NAMES)}")

    def to_frame(self) -> pd.DataFrame:
        """The headline numbers: ratings, users, movies, density, share of ratings on the top movies, ..."""
        return pd.DataFrame(self.summary.headline.rows(), columns=["", "value"]).set_index("")

    def to_dict(self) -> dict[str, Any]:
        return dict(self.summary.headline.rows())

    def write_report(self, out_dir: str | Path) -> Path:
        """Write ``report.html`` and one PNG per figure into ``out_dir``; returns the report's path."""
        return build_eda_report(self.data.dataset, out_dir)


def eda(data: Data) -> Eda:
    """Summarise ``data`` for the figures of `movierec eda`."""
    return Eda(data, summarise(data.dataset))
