"""EDA report: the pure statistics on hand-computed cases, the report on real data, and `movierec eda`."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from movierec.cli import main
from movierec.data.loader import load_dataset
from movierec.data.ratings import Dataset, Ratings, RatingScale, Vocabulary
from movierec.reports import stats
from movierec.reports.eda import FIGURES, build_eda_report, default_out_dir

STEMS = [spec.stem for spec in FIGURES]

# ------------------------------------------------------------------------------------------- gini, top share


def test_gini_of_equal_counts_is_zero() -> None:
    assert stats.gini(np.array([5, 5, 5, 5])) == 0.0


def test_gini_one_item_takes_all() -> None:
    # sorted x = 0,0,0,10; weights 2i-n-1 = -3,-1,1,3 -> 3*10 / (4*10) = 0.75 (population formula).
    assert stats.gini(np.array([0, 0, 0, 10])) == pytest.approx(0.75)
    assert stats.gini(np.array([10, 0, 0, 0])) == pytest.approx(0.75)  # order does not matter


def test_gini_hand_computed() -> None:
    # |differences| over the 6 unordered pairs of 1,2,3,4 sum to 10 -> 2*10 / (2 * 4² * 2.5) = 0.25.
    assert stats.gini(np.array([1, 2, 3, 4])) == pytest.approx(0.25)


def test_gini_degenerate_and_invalid() -> None:
    assert stats.gini(np.array([])) == 0.0
    assert stats.gini(np.zeros(3)) == 0.0
    assert stats.gini(np.array([7])) == 0.0
    with pytest.raises(ValueError):
        stats.gini(np.array([-1, 2]))


@pytest.mark.parametrize(
    ("fraction", "share"),
    [(0.25, 10 / 20), (0.5, 15 / 20), (0.75, 18 / 20), (1.0, 1.0), (0.01, 10 / 20)],
)
def test_top_share_hand_computed(fraction: float, share: float) -> None:
    assert stats.top_share(np.array([3, 10, 2, 5]), fraction) == pytest.approx(share)


def test_top_k_rounds_up_and_keeps_one() -> None:
    assert stats.top_k(1000, 0.01) == 10
    assert stats.top_k(250, 0.10) == 25
    assert stats.top_k(5, 0.10) == 1
    assert stats.top_k(0, 0.10) == 0
    with pytest.raises(ValueError):
        stats.top_k(10, 0.0)


def test_top_share_of_nothing_is_zero() -> None:
    assert stats.top_share(np.array([]), 0.1) == 0.0
    assert stats.top_share(np.zeros(4), 0.5) == 0.0


# ------------------------------------------------------------------------------------------- headline numbers


def tiny_ratings(timestamps: list[int] | None = None) -> Ratings:
    """4 users rating 4, 3, 2, 1 movies (the most popular first); 5 catalog movies, 4 rated: 10 ratings."""
    users = np.array([0, 0, 0, 0, 1, 1, 1, 2, 2, 3], dtype=np.int32)
    items = np.array([0, 1, 2, 3, 0, 1, 2, 0, 1, 0], dtype=np.int32)
    stars = np.array([5, 4, 3, 1, 4, 4, 2, 3, 5, 4], dtype=np.float32)
    stamps = np.zeros(10, np.int64) if timestamps is None else np.array(timestamps, dtype=np.int64)
    return Ratings(users, items, stars, stamps, Vocabulary(np.arange(1, 5)), Vocabulary(np.array([10, 20, 30, 40, 50])))


def test_headline_hand_computed() -> None:
    day = 86_400
    h = stats.headline(tiny_ratings([day * 18262] + [day * 18300] * 9), n_catalog=5)  # 2020-01-01 ...
    assert (h.n_ratings, h.n_users, h.n_rated_movies, h.n_catalog) == (10, 4, 4, 5)
    assert h.density == pytest.approx(10 / 16)
    assert h.mean_rating == pytest.approx(3.5)
    assert (h.first_day, h.last_day) == ("2020-01-01", "2020-02-08")
    # ratings per rated movie: 4, 3, 2, 1 -> Gini 0.25; top 1%/10%/20% = the top movie = 4/10.
    assert h.gini == pytest.approx(0.25)
    assert h.top_shares == pytest.approx({0.01: 0.4, 0.10: 0.4, 0.20: 0.4})
    rows = dict(h.rows())
    assert rows["ratings"] == "10" and rows["time span"] == "2020-01-01 to 2020-02-08"


def test_headline_without_timestamps() -> None:
    h = stats.headline(tiny_ratings(), n_catalog=5)
    assert h.first_day is None and dict(h.rows())["time span"] == "no timestamps"


# ---------------------------------------------------------------------------------------- figure aggregates


def test_rating_histogram_covers_the_whole_scale() -> None:
    values, counts = stats.rating_histogram(np.array([1, 1, 3, 5], np.float32), 1.0, 5.0, 1.0)
    assert values.tolist() == [1, 2, 3, 4, 5]
    assert counts.tolist() == [2, 0, 1, 0, 1]


def test_density_grid_by_block() -> None:
    r = tiny_ratings()
    grid = stats.density_grid(r.users, r.items, r.user_counts(), r.item_counts(), bins=2)
    # users by activity 0, 1 | 2, 3 and movies by popularity 0, 1 | 2, 3 (movie 4 is unrated, left out):
    # top users × top movies: 4 of 4 pairs; top users × rest: 3 of 4; rest × top: 3 of 4; rest × rest: 0.
    assert grid.tolist() == [[1.0, 0.75], [0.75, 0.0]]


def test_monthly_counts_fill_empty_months_and_skip_unknown() -> None:
    stamps = np.array(["2020-01-15", "2020-01-31T23:59", "2020-03-01"], dtype="datetime64[s]")
    months, counts = stats.monthly_counts(np.append(stamps.astype(np.int64), 0))
    assert [str(m) for m in months] == ["2020-01", "2020-02", "2020-03"]
    assert counts.tolist() == [2, 0, 1]


def test_genre_stats_weighted_by_ratings() -> None:
    counts = np.array([2, 1, 0, 3])
    sums = np.array([8.0, 2.0, 0.0, 9.0])
    g = stats.genre_stats(["Drama|Comedy", "Drama", "Horror", ""], counts, sums)
    assert g.genres == ["Drama", "Comedy"]  # Horror's only movie is unrated
    assert g.movies.tolist() == [2, 1]
    assert g.ratings.tolist() == [3, 2]
    assert g.mean_rating == pytest.approx([10 / 3, 4.0])


def test_binned_mean_drops_empty_bins() -> None:
    centres, means = stats.binned_mean(
        np.array([1.0, 1.5, 5.0]), np.array([2.0, 4.0, 1.0]), np.array([1.0, 2.0, 4.0, 8.0])
    )
    assert means.tolist() == [3.0, 1.0]
    assert centres == pytest.approx([np.sqrt(2), np.sqrt(32)])


# ------------------------------------------------------------------------------------------------- reports


def test_report_on_a_dataset_without_timestamps_or_genres(tmp_path: Path) -> None:
    movies = pd.DataFrame(
        {"movieId": [10, 20, 30, 40, 50], "title": list("abcde"), "year": pd.array([None] * 5, "Int64")}
    ).assign(genres="")
    dataset = Dataset("tiny", tiny_ratings(), movies, scale=RatingScale(1.0, 5.0, 1.0))
    report = build_eda_report(dataset, tmp_path / "out")
    assert report == tmp_path / "out" / "report.html"
    assert all((tmp_path / "out" / f"{stem}.png").is_file() for stem in STEMS)
    assert "no timestamps" in report.read_text()


@pytest.fixture(scope="module")
def small_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dataset = load_dataset("ml-latest-small", use_cache=False)  # no cache: nothing written outside tmp
    return build_eda_report(dataset, tmp_path_factory.mktemp("eda") / "ml-latest-small")


def test_report_on_ml_latest_small(small_report: Path) -> None:
    folder = small_report.parent
    page = small_report.read_text()
    for stem in STEMS:
        png = folder / f"{stem}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    images = re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(images) == len(STEMS)
    assert "<table>" in page and "Headline numbers" in page
    for label, value in [("ratings", "100,836"), ("users", "610"), ("rated movies", "9,724")]:
        assert f"<th scope='row'>{label}</th><td>{value}</td>" in page
    assert "Gini of ratings per rated movie" in page and "top 20% of movies" in page
    assert 'src="http' not in page and "<script" not in page  # self-contained


def test_cli_eda(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eda", "ml-latest-small", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "report.html").is_file()
    assert "report.html" in capsys.readouterr().out


def test_cli_eda_bad_source_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eda", "/no/such/path"]) == 2
    assert "neither a known release" in capsys.readouterr().err


def test_default_out_dir() -> None:
    assert default_out_dir("ml-latest-small") == Path("eda-ml-latest-small")
    assert default_out_dir("my data/x") == Path("eda-my_data_x")
