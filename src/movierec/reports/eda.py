"""`movierec eda`: an exploratory report of a ratings dataset: PNG figures and one self-contained HTML page.

The ratings are reduced once to small aggregates (bincounts over users, movies, days and 200 × 200 blocks),
so the figures never draw millions of points and the whole report stays fast on ML-25M-sized data.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.axis import Axis
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from movierec import atomic
from movierec.data.ratings import Dataset
from movierec.reports import stats
from movierec.reports.figures import (
    ACCENT_COLOR,
    MAIN_COLOR,
    PALETTE,
    Section,
    html_page,
    html_table,
    img_tag,
    new_figure,
    report_style,
    save_figure,
)

REPORT_NAME = "report.html"
DENSITY_BLOCKS = 200
EMPTY_COLOR = "0.85"  # blocks without a single rating


@dataclass(frozen=True)
class EdaData:
    """Everything the figures need, already aggregated (small arrays only)."""

    name: str
    headline: stats.Headline
    star_values: np.ndarray
    star_counts: np.ndarray
    item_counts: np.ndarray  # per rated movie
    item_means: np.ndarray  # per rated movie
    user_counts: np.ndarray  # per rated user
    density: np.ndarray  # DENSITY_BLOCKS × DENSITY_BLOCKS (or fewer)
    months: np.ndarray  # datetime64[M]
    month_counts: np.ndarray
    genres: stats.GenreStats


def summarise(dataset: Dataset) -> EdaData:
    """Reduce the dataset's ratings to the aggregates the figures draw."""
    r = dataset.ratings
    user_counts = r.user_counts()
    all_item_counts = r.item_counts()
    item_sums = np.bincount(r.items, weights=r.ratings, minlength=r.n_items)
    rated = all_item_counts > 0
    values, star_counts = stats.rating_histogram(r.ratings, dataset.scale.low, dataset.scale.high, dataset.scale.step)
    months, month_counts = stats.monthly_counts(r.timestamps)
    return EdaData(
        name=dataset.name,
        headline=stats.headline(r, len(dataset.movies)),
        star_values=values,
        star_counts=star_counts,
        item_counts=all_item_counts[rated],
        item_means=item_sums[rated] / all_item_counts[rated],
        user_counts=user_counts[user_counts > 0],
        density=stats.density_grid(r.users, r.items, user_counts, all_item_counts, DENSITY_BLOCKS),
        months=months,
        month_counts=month_counts,
        genres=stats.genre_stats(dataset.movies["genres"].tolist(), all_item_counts, item_sums),
    )


# ------------------------------------------------------------------------------------------------- figures


def _human(value: float, _pos: object = None) -> str:
    """Tick label for counts: 950, 12k, 3.4M."""
    for size, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= size:
            return f"{value / size:.3g}{suffix}"
    return f"{value:.3g}"


COUNT_FORMAT = FuncFormatter(_human)


def _log_axis(axis: Axis, values: np.ndarray) -> None:
    """Log-scale ticks labelled like 20, 500, 3k: at 1, 2, 5 × 10^k when ``values`` span few decades."""
    positive = values[values > 0]
    decades = float(np.log10(positive.max() / positive.min())) if positive.size else 0.0
    subs = (1.0, 2.0, 5.0) if decades <= 3.5 else (1.0,)
    axis.set_major_locator(LogLocator(subs=subs))
    axis.set_major_formatter(COUNT_FORMAT)
    axis.set_minor_formatter(NullFormatter())


def _empty(fig: Figure, ax: Axes, message: str) -> Figure:
    """A figure that says there is nothing to draw."""
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes, fontsize=13)
    ax.set_axis_off()
    return fig


def plot_rating_distribution(data: EdaData) -> Figure:
    """One bar per star value, labelled with its share of all ratings."""
    fig, ax = new_figure()
    step = float(data.star_values[1] - data.star_values[0]) if len(data.star_values) > 1 else 1.0
    bars = ax.bar(data.star_values, data.star_counts, width=0.8 * step, color=MAIN_COLOR)
    total = max(1, int(data.star_counts.sum()))
    ax.bar_label(bars, labels=[f"{c / total:.1%}" for c in data.star_counts], fontsize=9, padding=2)
    ax.set_xticks(data.star_values, [f"{v:g}" for v in data.star_values])
    ax.yaxis.set_major_formatter(COUNT_FORMAT)
    ax.margins(y=0.1)
    ax.set(title="Rating distribution", xlabel="stars", ylabel="ratings")
    ax.grid(axis="x", visible=False)
    return fig


def plot_long_tail(data: EdaData) -> Figure:
    """Ratings per movie, movies sorted by popularity, with the top 1/10/20% shares and the Gini."""
    fig, ax = new_figure()
    counts = np.sort(data.item_counts)[::-1]
    if counts.size == 0:
        return _empty(fig, ax, "no rated movies")
    ranks = np.arange(1, counts.size + 1)
    ax.fill_between(ranks, counts, 0.8, color=MAIN_COLOR, alpha=0.25, linewidth=0)
    ax.plot(ranks, counts, color=MAIN_COLOR, linewidth=1.6)
    for (fraction, share), color in zip(data.headline.top_shares.items(), PALETTE[1:], strict=False):
        k = stats.top_k(counts.size, fraction)
        label = f"top {fraction:.0%} ({k:,} movies): {share:.1%} of ratings"
        ax.axvline(k, color=color, linestyle="--", linewidth=1.4, label=label)
    ax.set_yscale("log")
    ax.set_ylim(bottom=0.8)
    ax.set_xlim(0, counts.size + 1)
    ax.xaxis.set_major_formatter(COUNT_FORMAT)
    _log_axis(ax.yaxis, counts)
    ax.legend(title=f"Gini of popularity = {data.headline.gini:.3f}", loc="upper right", frameon=True)
    ax.set(
        title="The long tail: ratings per movie",
        xlabel="movies, most rated first (rank)",
        ylabel="ratings of the movie (log scale)",
    )
    return fig


def plot_ratings_per_user(data: EdaData) -> Figure:
    """Histogram of ratings per user on log-spaced bins, log-log."""
    fig, ax = new_figure()
    if data.user_counts.size == 0:
        return _empty(fig, ax, "no users")
    edges = stats.log_edges(data.user_counts)
    hist, _ = np.histogram(data.user_counts, bins=edges)
    ax.stairs(hist, edges, fill=True, color=MAIN_COLOR, alpha=0.8)
    median = float(np.median(data.user_counts))
    ax.axvline(median, color=ACCENT_COLOR, linestyle="--", label=f"median: {median:,.0f} ratings")
    ax.set_xscale("log")
    ax.set_yscale("log")
    _log_axis(ax.xaxis, edges)
    _log_axis(ax.yaxis, hist)
    ax.legend(loc="upper right")
    ax.set(
        title=f"Ratings per user ({data.user_counts.size:,} users)",
        xlabel="ratings by the user (log scale)",
        ylabel="users per bin (log scale)",
    )
    return fig


def plot_density(data: EdaData) -> Figure:
    """Block density of the user × movie matrix, users and movies sorted by activity, log colours."""
    fig, ax = new_figure()
    grid = data.density
    if grid.size == 0 or not (grid > 0).any():
        return _empty(fig, ax, "no ratings")
    h = data.headline
    shown = np.ma.masked_less_equal(grid, 0)
    image = ax.imshow(
        shown,
        aspect="auto",
        interpolation="nearest",
        cmap="magma_r",
        norm=LogNorm(vmin=float(shown.min()), vmax=float(shown.max())),
        extent=(0, h.n_rated_movies, h.n_users, 0),
    )
    ax.set_facecolor(EMPTY_COLOR)
    ax.grid(False)
    colorbar = fig.colorbar(image, ax=ax)
    colorbar.set_label("share of the block's user × movie pairs rated (log)")
    ax.xaxis.set_major_formatter(COUNT_FORMAT)
    ax.yaxis.set_major_formatter(COUNT_FORMAT)
    ax.set(
        title=f"User × movie matrix: density {h.density:.3%} ({grid.shape[0]} × {grid.shape[1]} blocks)",
        xlabel="movies, most rated first (rank)",
        ylabel="users, most active first (rank)",
    )
    return fig


def plot_popularity_bias(data: EdaData) -> Figure:
    """Mean rating of each movie against its number of ratings: hexbin density plus a binned-mean line."""
    fig, ax = new_figure()
    if data.item_counts.size == 0:
        return _empty(fig, ax, "no rated movies")
    counts = data.item_counts.astype(np.float64)
    hexes = ax.hexbin(counts, data.item_means, xscale="log", gridsize=(60, 30), bins="log", mincnt=1, cmap="Blues")
    fig.colorbar(hexes, ax=ax).set_label("movies per hexagon (log)")
    centres, means = stats.binned_mean(counts, data.item_means, stats.log_edges(counts, 25))
    ax.plot(centres, means, "o-", color=ACCENT_COLOR, linewidth=2, markersize=4, label="binned mean")
    overall = data.headline.mean_rating
    ax.axhline(overall, color="0.3", linestyle=":", label=f"mean of all ratings: {overall:.2f}")
    _log_axis(ax.xaxis, counts)
    ax.legend(loc="lower right")
    ax.grid(False)
    ax.set(
        title="Popularity bias: mean rating vs. number of ratings",
        xlabel="ratings of the movie (log scale)",
        ylabel="mean rating of the movie",
    )
    return fig


def plot_over_time(data: EdaData) -> Figure:
    """Ratings per calendar month."""
    fig, ax = new_figure()
    if data.months.size == 0:
        return _empty(fig, ax, "this dataset has no timestamps")
    days = data.months.astype("datetime64[D]")
    ax.bar(days, data.month_counts, width=28, align="edge", color=MAIN_COLOR, linewidth=0)
    ax.yaxis.set_major_formatter(COUNT_FORMAT)
    ax.set(
        title=f"Ratings per month ({data.headline.first_day} to {data.headline.last_day})",
        xlabel="month",
        ylabel="ratings in the month",
    )
    return fig


def plot_genres(data: EdaData) -> Figure:
    """Two panels sharing the genre axis: rated movies per genre, and mean rating per genre."""
    g = data.genres
    if not g.genres:
        fig, ax = new_figure()
        return _empty(fig, ax, "no genres in the movies table")
    height = max(5.0, 0.27 * len(g.genres) + 1.2)
    fig, (left, right) = new_figure(1, 2, figsize=(9.0, height), sharey=True, gridspec_kw={"width_ratios": [1.4, 1]})
    y = np.arange(len(g.genres))
    left.barh(y, g.movies, color=MAIN_COLOR)
    left.set_yticks(y, g.genres)
    left.invert_yaxis()
    left.xaxis.set_major_formatter(COUNT_FORMAT)
    left.set(title="Rated movies per genre", xlabel="movies (a movie counts in each of its genres)")
    right.hlines(y, g.mean_rating.min() - 0.05, g.mean_rating, color="0.8", linewidth=1)
    right.plot(g.mean_rating, y, "o", color=ACCENT_COLOR)
    overall = data.headline.mean_rating
    right.axvline(overall, color="0.3", linestyle=":")
    right.margins(x=0.12)
    right.set(
        title="Mean rating per genre",
        xlabel=f"mean of the genre's ratings (dotted: all, {overall:.2f})",
    )
    for ax in (left, right):
        ax.grid(axis="y", visible=False)
    fig.suptitle("Movies and mean rating per genre", fontsize=13, fontweight="bold")
    return fig


@dataclass(frozen=True)
class FigureSpec:
    stem: str
    title: str
    caption: str
    plot: Callable[[EdaData], Figure]


FIGURES = (
    FigureSpec(
        "rating_distribution",
        "Rating distribution",
        "How many ratings fall on each star value.",
        plot_rating_distribution,
    ),
    FigureSpec(
        "ratings_per_movie",
        "Ratings per movie: the long tail",
        "Movies sorted by number of ratings; dashed lines mark the top 1%, 10% and 20% of rated movies "
        "and the share of all ratings they take. Gini: 0 if every movie had as many ratings, near 1 if "
        "one took all.",
        plot_long_tail,
    ),
    FigureSpec(
        "ratings_per_user",
        "Ratings per user",
        "How active users are, on log-spaced bins.",
        plot_ratings_per_user,
    ),
    FigureSpec(
        "matrix_density",
        "Density of the user × movie matrix",
        "Users sorted by activity (rows) and movies by popularity (columns), grouped into blocks; the "
        "colour is the share of the block's user × movie pairs that carry a rating. Grey blocks have none.",
        plot_density,
    ),
    FigureSpec(
        "popularity_bias",
        "Popularity bias",
        "Each rated movie's mean rating against its number of ratings, as hexagon counts, with the mean over "
        "log-spaced bins of popularity.",
        plot_popularity_bias,
    ),
    FigureSpec(
        "ratings_over_time",
        "Ratings over time",
        "Ratings per calendar month (UTC).",
        plot_over_time,
    ),
    FigureSpec(
        "genres",
        "Genres",
        "Rated movies per genre and the mean of all ratings given to the genre's movies.",
        plot_genres,
    ),
)


# -------------------------------------------------------------------------------------------------- report


def default_out_dir(dataset_name: str) -> Path:
    """``./eda-<dataset name>`` (characters unsafe in a file name replaced by ``_``)."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in dataset_name)
    return Path(f"eda-{safe}")


def build_eda_report(dataset: Dataset, out_dir: str | Path) -> Path:
    """Write every figure as ``<stem>.png`` and ``report.html`` (images embedded) in ``out_dir``; return the
    report's path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    data = summarise(dataset)
    sections = [Section("Headline numbers", html_table(data.headline.rows()))]
    with report_style():
        for spec in FIGURES:
            fig = spec.plot(data)
            png = save_figure(fig, out / f"{spec.stem}.png")
            sections.append(Section(spec.title, img_tag(png, spec.title), spec.caption))
    report = out / REPORT_NAME
    page = html_page(f"Exploring {data.name}", sections, subtitle="movierec exploratory data analysis")
    atomic.write_text(report, page)
    return report
