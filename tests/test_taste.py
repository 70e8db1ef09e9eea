"""The taste protocol: building the users, which genres qualify, the shares and overlap, the JSON form, and
`movierec evaluate RUN --protocol taste` end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from movierec.artifact.run import load_run, save_run
from movierec.cli import main
from movierec.errors import MovieRecError
from movierec.evaluate.taste import (
    LIST_LENGTH,
    PROFILE_MIN_RATINGS,
    PROFILE_SIZE,
    SPARE_IN_GENRE,
    GenreUsers,
    LeftOut,
    ListPair,
    Stars,
    build_users,
    candidates,
    ease_lister,
    genre_users,
    popularity_lister,
    summarise,
    taste_report,
)
from movierec.models.ease import Ease

from serve_fixtures import build_run

MIN_RATINGS = 10
STARS = Stars(liked=5.0, disliked=1.0)


def catalog(n_genre: int, n_spare: int, n_other: int) -> tuple[np.ndarray, np.ndarray]:
    """Counts and a one-genre matrix: ``n_genre`` well-known genre movies, ``n_spare`` genre movies with the
    lists' minimum support, ``n_other`` well-known movies outside the genre, and one thin genre movie."""
    counts = np.concatenate(
        [
            PROFILE_MIN_RATINGS + np.arange(n_genre)[::-1],  # most-rated first
            np.full(n_spare, MIN_RATINGS),
            PROFILE_MIN_RATINGS + 100 + np.arange(n_other),
            [MIN_RATINGS - 1],
        ]
    )
    member = np.concatenate([np.ones(n_genre + n_spare, bool), np.zeros(n_other, bool), [True]])
    return counts, member[:, None]


def test_users_take_the_most_rated_well_known_movies_in_and_out_of_the_genre() -> None:
    counts, genres = catalog(PROFILE_SIZE + 3, SPARE_IN_GENRE, PROFILE_SIZE + 2)
    users, left_out = build_users(counts, genres, ["Horror"], MIN_RATINGS)
    assert left_out == []
    (horror,) = users
    assert horror.genre == "Horror"
    assert horror.in_genre.tolist() == list(range(PROFILE_SIZE))
    outside = np.flatnonzero(~genres[:, 0])
    assert horror.unrelated.tolist() == outside[::-1][:PROFILE_SIZE].tolist()  # the most-rated outside


def test_ties_in_rating_counts_go_to_the_lower_index() -> None:
    counts = np.full(100, PROFILE_MIN_RATINGS)
    genres = (np.arange(100) % 2 == 0)[:, None]
    (user,), _ = build_users(counts, genres, ["Drama"], MIN_RATINGS)
    assert user.in_genre.tolist() == list(range(0, 2 * PROFILE_SIZE, 2))
    assert user.unrelated.tolist() == list(range(1, 2 * PROFILE_SIZE, 2))


def test_the_swapped_user_rates_the_same_movies_with_the_stars_swapped() -> None:
    user = GenreUsers("Horror", np.array([3, 1]), np.array([7, 9]))
    assert user.liker(STARS) == [(3, 5.0), (1, 5.0), (7, 1.0), (9, 1.0)]
    assert user.swapped(STARS) == [(3, 1.0), (1, 1.0), (7, 5.0), (9, 5.0)]
    assert user.rated.tolist() == [3, 1, 7, 9]


@pytest.mark.parametrize(
    ("low", "high", "liked", "disliked"), [(0.5, 5, 5, 1), (1, 5, 5, 1), (0, 1, 1, 0), (2, 10, 10, 2)]
)
def test_stars_are_five_and_one_on_movielens_scales(low: float, high: float, liked: float, disliked: float) -> None:
    assert Stars.for_scale(low, high) == Stars(liked, disliked)


@pytest.mark.parametrize(
    ("n_genre", "n_spare", "n_other", "reason"),
    [
        (PROFILE_SIZE, SPARE_IN_GENRE, PROFILE_SIZE, None),
        (PROFILE_SIZE - 1, SPARE_IN_GENRE + 1, PROFILE_SIZE, f"with >= {PROFILE_MIN_RATINGS} training ratings: 7 "),
        (PROFILE_SIZE, SPARE_IN_GENRE - 1, PROFILE_SIZE, f"beside its {PROFILE_SIZE} best known: 29 "),
        (
            PROFILE_SIZE,
            SPARE_IN_GENRE,
            PROFILE_SIZE - 1,
            f"outside it with >= {PROFILE_MIN_RATINGS} training ratings: 7 ",
        ),
    ],
)
def test_a_genre_qualifies_at_the_thresholds_and_not_below(
    n_genre: int, n_spare: int, n_other: int, reason: str | None
) -> None:
    counts, genres = catalog(n_genre, n_spare, n_other)
    built = genre_users("Horror", counts, genres[:, 0], MIN_RATINGS)
    if reason is None:
        assert isinstance(built, GenreUsers)
    else:
        assert isinstance(built, LeftOut) and built.genre == "Horror" and reason in built.reason


def test_genres_that_do_not_qualify_are_reported_beside_those_that_do() -> None:
    counts, genres = catalog(PROFILE_SIZE, SPARE_IN_GENRE, PROFILE_SIZE)
    thin = np.zeros_like(genres)
    thin[-1] = True
    users, left_out = build_users(counts, np.hstack([genres, thin]), ["Horror", "Thin"], MIN_RATINGS)
    assert [u.genre for u in users] == ["Horror"]
    assert [entry.to_dict()["genre"] for entry in left_out] == ["Thin"]


def test_spare_movies_above_the_profile_count_too() -> None:
    """The genre's well-known movies beyond its eight profile movies are candidates for the list."""
    counts, genres = catalog(PROFILE_SIZE + SPARE_IN_GENRE, 0, PROFILE_SIZE)
    users, _ = build_users(counts, genres, ["Horror"], MIN_RATINGS)
    assert len(users) == 1


def test_a_catalog_without_genres_or_without_a_qualifying_genre_is_one_sentence() -> None:
    counts, genres = catalog(PROFILE_SIZE, SPARE_IN_GENRE - 1, PROFILE_SIZE)
    with pytest.raises(MovieRecError, match="lists no genres"):
        build_users(counts, genres[:, :0], [], MIN_RATINGS)
    with pytest.raises(MovieRecError, match=f"No genre .* {PROFILE_SIZE} movies with at least {PROFILE_MIN_RATINGS}"):
        build_users(counts, genres, ["Horror"], MIN_RATINGS)


def test_shares_and_overlap_of_two_lists() -> None:
    in_genre = np.zeros(30, bool)
    in_genre[:5] = True
    pair = ListPair(np.array([0, 1, 2, 10, 11]), np.array([4, 10, 11, 12, 13, 14, 15, 16, 17, 18]), in_genre)
    assert (pair.liker_count, pair.swapped_count, pair.overlap) == (3, 1, 2)
    as_json = pair.to_dict(np.arange(30) + 100)
    assert as_json["liker_in_genre"] == pytest.approx(3 / 5)
    assert as_json["swapped_in_genre"] == pytest.approx(1 / 10)
    assert as_json["liker_list"] == [100, 101, 102, 110, 111]
    other = ListPair(np.arange(10), np.arange(10), in_genre)
    assert summarise([pair, other]) == {
        "liker_in_genre_mean": pytest.approx((3 / 5 + 5 / 10) / 2),
        "liker_lowest_count": 3,
        "swapped_in_genre_mean": pytest.approx((1 / 10 + 5 / 10) / 2),
        "overlap_mean": pytest.approx((2 + 10) / 2),
    }


def test_candidates_leave_out_rated_and_thin_movies() -> None:
    counts = np.array([50, 9, 10, 30])
    assert candidates(counts, MIN_RATINGS, np.array([3])).tolist() == [True, False, True, False]


def test_popularity_gives_both_users_the_most_rated_candidates() -> None:
    counts = np.arange(40) + 5
    lister = popularity_lister(counts, MIN_RATINGS)
    user = GenreUsers("Horror", np.array([39, 38]), np.array([37]))
    liker, swapped = lister(user.liker(STARS)), lister(user.swapped(STARS))
    assert liker.tolist() == swapped.tolist() == list(range(36, 36 - LIST_LENGTH, -1))


def test_ease_is_given_the_liked_movies_as_its_history() -> None:
    weights = np.zeros((20, 20), np.float32)
    weights[0, 10:15] = 1.0  # liking movie 0 pulls 10-14 up
    weights[1, 15:20] = 1.0  # liking movie 1 pulls 15-19 up
    weights[0, 1] = weights[1, 0] = 5.0  # rated movies never come back
    lister = ease_lister(Ease(weights, np.zeros((1, 20), np.float32)), np.full(20, 50), MIN_RATINGS, STARS)
    user = GenreUsers("Horror", np.array([0]), np.array([1]))
    assert set(lister(user.liker(STARS))[:5].tolist()) == set(range(10, 15))
    assert set(lister(user.swapped(STARS))[:5].tolist()) == set(range(15, 20))
    assert len(lister(user.liker(STARS))) == LIST_LENGTH


def test_the_report_has_one_object_per_genre_a_summary_and_the_genres_left_out() -> None:
    counts, genres = catalog(PROFILE_SIZE, SPARE_IN_GENRE, PROFILE_SIZE)
    users, _ = build_users(counts, genres, ["Horror"], MIN_RATINGS)
    movie_ids = np.arange(counts.size) * 10
    listers = {"model": popularity_lister(counts, MIN_RATINGS), "popularity": popularity_lister(counts, MIN_RATINGS)}
    report = taste_report(
        users,
        listers,
        genre_matrix=genres,
        genre_names=["Horror"],
        movie_ids=movie_ids,
        stars=STARS,
        min_ratings=MIN_RATINGS,
        notes=["EASE is left out"],
    )
    report = json.loads(json.dumps(report))
    assert report["protocol"] == "taste"
    assert report["settings"]["profile_size"] == PROFILE_SIZE
    (row,) = report["genres"]
    assert row["genre"] == "Horror"
    assert row["in_genre_movies"] == (movie_ids[:PROFILE_SIZE]).tolist()
    assert set(row) == {"genre", "in_genre_movies", "unrelated_movies", "model", "popularity"}
    assert set(row["model"]) == {"liker_in_genre", "swapped_in_genre", "overlap", "liker_list", "swapped_list"}
    assert set(report["summary"]) == {"model", "popularity"}
    assert report["left_out"] == [] and report["notes"] == ["EASE is left out"]


# ---------------------------------------------------------------------------------------------- the CLI


@pytest.fixture(scope="module")
def small_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_run(tmp_path_factory.mktemp("taste") / "run")


def resaved(run_dir: Path, out: Path, genres: str) -> Path:
    """``run_dir`` written again to ``out`` with every movie's genres set to ``genres``."""
    run = load_run(run_dir)
    save_run(
        out,
        config=run.config,
        model=run.model,
        movies=run.movies.assign(genres=genres),
        train=run.train,
        metrics={},
        history=[],
        data=run.data,
    )
    return out


def test_the_protocol_runs_on_a_small_run_folder(small_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evaluate", str(small_run), "--protocol", "taste"]) == 0
    shown = capsys.readouterr().out
    assert "Taste summary" in shown and "EASE" in shown and "Left out: Horror" in shown


@pytest.mark.parametrize(("genres", "message"), [("", "lists no genres"), ("Western", "No genre of the run's catalog")])
def test_a_run_the_protocol_cannot_use_exits_2_with_one_sentence(
    small_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], genres: str, message: str
) -> None:
    run_dir = resaved(small_run, tmp_path / "run", genres)
    assert main(["evaluate", str(run_dir), "--protocol", "taste", "--json"]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.slow
def test_taste_on_the_embedded_data(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_dir = tmp_path / "run"
    args = ["train", "--model", "biased-mf", "--solver", "als", "--epochs", "3", "--out", str(run_dir), "--quiet"]
    assert main(args) == 0
    capsys.readouterr()
    assert main(["evaluate", str(run_dir), "--protocol", "taste", "--json"]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["protocol"] == "taste" and report["model_name"] == "biased-mf"
    assert len(report["genres"]) >= 10
    assert {"Documentary", "Film-Noir"} <= {entry["genre"] for entry in report["left_out"]}
    for row in report["genres"]:
        assert len(row["in_genre_movies"]) == len(row["unrelated_movies"]) == PROFILE_SIZE
        for name in ("model", "ease", "popularity"):
            lists = row[name]
            assert len(lists["liker_list"]) == len(lists["swapped_list"]) == LIST_LENGTH
            rated = set(row["in_genre_movies"]) | set(row["unrelated_movies"])
            assert not rated & (set(lists["liker_list"]) | set(lists["swapped_list"]))
            assert 0 <= lists["liker_in_genre"] <= 1 and 0 <= lists["swapped_in_genre"] <= 1
            assert 0 <= lists["overlap"] <= LIST_LENGTH
        assert row["popularity"]["liker_list"] == row["popularity"]["swapped_list"]
        assert row["popularity"]["overlap"] == LIST_LENGTH
    assert set(report["summary"]) == {"model", "ease", "popularity"}
    for summary in report["summary"].values():
        assert 0 <= summary["liker_lowest_count"] <= LIST_LENGTH
        assert 0 <= summary["liker_in_genre_mean"] <= 1 and 0 <= summary["swapped_in_genre_mean"] <= 1
