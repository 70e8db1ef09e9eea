"""Where a person meets the adaptive interview: ``Recommender.next_questions`` (engine and public API) with its
validation, ``POST /onboarding/next`` with its 4xx answers, and `movierec interview` driven through stdin; and the
list the answers lead to, where "not seen" answers count too (``recommend_new_user(not_seen=...)``,
``recommend(not_seen=...)``, ``POST /onboarding/recommendations``, the CLI's list)."""

from __future__ import annotations

import io
import subprocess
import sys
import warnings
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import movierec
from movierec.artifact.run import load_run, save_run
from movierec.cli import main
from movierec.errors import MovieRecError
from movierec.models.factors import FactorModel
from movierec.recommend import OnboardingMovie, Recommender
from movierec.recommend.recommender import MAX_ANSWERS
from movierec.serve import create_app, load_settings

from serve_fixtures import build_run

with warnings.catch_warnings():  # starlette asks for httpx2, which is not a dependency here
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_run(tmp_path_factory.mktemp("interview") / "run")


@pytest.fixture(scope="module")
def engine(run_dir: Path) -> Recommender:
    return Recommender.load(run_dir)


@pytest.fixture(scope="module")
def client(run_dir: Path) -> Iterator[TestClient]:
    with TestClient(create_app(load_settings(run_dir=run_dir))) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def watch_run_dir(run_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same run with a "likely to watch" part (rank 4 of who rated what), so "not seen" can move a list."""
    run = load_run(run_dir)
    p, train = run.model.params, run.train
    rated = np.zeros((p.n_users, p.n_items))
    rated[train.users, train.items] = 1.0
    left, strength, right = np.linalg.svd(rated, full_matrices=False)
    scale = np.sqrt(strength[:4])
    params = replace(
        p,
        watch_user=(left[:, :4] * scale).astype(np.float32),
        watch_item=(right[:4].T * scale).astype(np.float32),
        watch_weight=2.0,
    )
    out = tmp_path_factory.mktemp("interview-watch") / "run"
    model = FactorModel(params, run.model.name)
    save_run(out, config=run.config, model=model, movies=run.movies, train=train, metrics={}, history=[], data=run.data)
    return out


@pytest.fixture(scope="module")
def watch_engine(watch_run_dir: Path) -> Recommender:
    return Recommender.load(watch_run_dir)


def ids(movies: list[OnboardingMovie]) -> list[int]:
    return [movie.movieId for movie in movies]


def listed(result: object) -> list[int]:
    """The movieIds of a list (``NewUserResult`` or the public API's ``Recommendations``)."""
    items = getattr(result, "recommendations", None) or getattr(result, "items", ())
    return [movie.movieId for movie in items]


RATED = [(1, 5.0), (2, 4.0), (3, 1.0)]
"""A new person's stars, by movieId (the first movies of the embedded catalog, all in the test run)."""


# ------------------------------------------------------------------------------------------ the Recommender


def test_questions_are_well_known_movies_never_one_answered(engine: Recommender) -> None:
    first = ids(engine.next_questions([], 5))
    assert len(first) == len(set(first)) == 5
    for movie in first:
        item = engine.item_vocab.index_one(movie)
        assert item is not None and engine.catalog.counts[item] >= engine.min_ratings
    answers = [(first[0], 4.5), (first[1], None), (first[2], 1)]
    following = ids(engine.next_questions(answers, 10))
    assert len(following) == 10
    assert not set(following) & set(first[:3])
    assert engine._interviewer is engine._interviewer  # built once per Recommender


def test_a_later_answer_about_the_same_movie_wins(engine: Recommender) -> None:
    movie = ids(engine.next_questions([], 1))[0]
    twice = ids(engine.next_questions([(movie, None), (movie, 4.0)], 5))
    assert twice == ids(engine.next_questions([(movie, 4.0)], 5))
    assert movie not in twice


@pytest.mark.parametrize(
    ("answers", "fragments"),
    [
        ([(999_999, 4.0)], ["movie 999999", "not in this run's catalog"]),
        ([(1, 7.0)], ["rating 7.0", "movie 1", "outside the scale", "0.5 to 5"]),
        ([(1, float("nan"))], ["rating nan", "0.5 to 5"]),
        ([(1, 0.0)], ["rating 0.0", "0.5 to 5"]),
        ([(1, None)] * (MAX_ANSWERS + 1), [f"{MAX_ANSWERS + 1} answers", f"at most {MAX_ANSWERS}"]),
    ],
    ids=["unknown movie", "above the scale", "not a number", "below the scale", "too many answers"],
)
def test_bad_answers_are_one_sentence(
    engine: Recommender, answers: list[tuple[int, float | None]], fragments: list[str]
) -> None:
    with pytest.raises(MovieRecError) as raised:
        engine.next_questions(answers)
    message = str(raised.value)
    assert message.endswith(".") and message.count(". ") == 0, message
    for fragment in fragments:
        assert fragment in message, message


@pytest.mark.parametrize("n", [0, -1, 1001, True])
def test_a_bad_number_of_questions_is_refused(engine: Recommender, n: int) -> None:
    with pytest.raises(MovieRecError, match="list length"):
        engine.next_questions([], n)


def test_the_public_api_gives_the_endpoints_json(run_dir: Path, client: TestClient) -> None:
    recommender = movierec.load(run_dir)
    first = recommender.next_questions(n=3)
    assert isinstance(first, movierec.Onboarding)
    picked = [movie.movieId for movie in first.items]
    answers = {picked[0]: 5.0, picked[1]: None}
    body = {"answers": [{"movieId": m, "rating": r} for m, r in answers.items()], "n": 4}
    response = client.post("/onboarding/next", json=body)
    assert response.status_code == 200, response.text
    assert recommender.next_questions(answers, 4).to_dict() == response.json()
    assert recommender.next_questions(list(answers.items()), 4) == recommender.next_questions(answers, 4)


def test_not_seen_answers_change_the_list(watch_engine: Recommender) -> None:
    before = watch_engine.recommend_new_user(RATED, 10, not_seen=[])  # folded in as an interview's answers
    unseen = listed(before)[:3]
    after = watch_engine.recommend_new_user(RATED, 10, not_seen=unseen)
    assert listed(after) != listed(before)
    scores = {movie.movieId: movie.score for movie in after.recommendations}
    first = before.recommendations[0]
    assert scores.get(first.movieId, -np.inf) < first.score  # "haven't seen it" lowers its watch score
    # an interview's answers give the same list; a movie both rated and not seen counts as rated
    answers = [*RATED, *((movie, None) for movie in unseen)]
    assert listed(watch_engine.recommend_after_interview(answers, 10)) == listed(after)
    both = watch_engine.recommend_new_user(RATED, 10, not_seen=[RATED[0][0], 999_999])
    assert listed(both) == listed(before) and both.ignored == []
    assert listed(watch_engine.recommend_after_interview(RATED, 10)) == listed(before)


def test_without_a_watch_part_not_seen_changes_nothing(engine: Recommender) -> None:
    before = engine.recommend_new_user(RATED, 10)
    assert listed(engine.recommend_new_user(RATED, 10, not_seen=listed(before)[:3])) == listed(before)


def test_the_public_api_takes_not_seen(watch_run_dir: Path, watch_engine: Recommender) -> None:
    recommender = movierec.load(watch_run_dir)
    ratings = dict(RATED)
    unseen = listed(recommender.recommend(ratings, not_seen=[]))[:3]
    shaped = recommender.recommend(ratings, not_seen=unseen)
    assert listed(shaped) == listed(watch_engine.recommend_new_user(RATED, 10, not_seen=unseen))
    assert listed(shaped) != listed(recommender.recommend(ratings, not_seen=[]))
    assert listed(recommender.recommend(ratings)) == listed(watch_engine.recommend_new_user(RATED, 10))
    with pytest.raises(MovieRecError, match="not_seen="):
        recommender.recommend(user=1, not_seen=unseen)


# ---------------------------------------------------------------------------------------------- the service


def test_the_endpoint_answers_like_get_onboarding(client: TestClient) -> None:
    response = client.post("/onboarding/next", json={})
    assert response.status_code == 200, response.text
    movies = response.json()["movies"]
    assert len(movies) == 5
    assert set(movies[0]) == set(client.get("/onboarding?n=1").json()["movies"][0])
    asked = [movies[0]["movieId"], movies[1]["movieId"]]
    body = {"answers": [{"movieId": asked[0], "rating": 4}, {"movieId": asked[1], "rating": None}], "n": 8}
    following = client.post("/onboarding/next", json=body).json()["movies"]
    assert len(following) == 8
    assert not {m["movieId"] for m in following} & set(asked)


@pytest.mark.parametrize(
    ("body", "fragments"),
    [
        ({"answers": [{"movieId": 999_999, "rating": 4}]}, ["movie 999999", "catalog"]),
        ({"answers": [{"movieId": 1, "rating": 7}]}, ["rating 7.0", "0.5 to 5"]),
        ({"answers": [{"movieId": 1, "rating": 0.25}]}, ["rating 0.25", "0.5 to 5"]),
        ({"answers": [{"movieId": 1, "rating": 11}]}, ["body.answers.0.rating", "from 0 to 10"]),
        ({"answers": [{"movieId": 1, "rating": None}] * (MAX_ANSWERS + 1)}, [f"at most {MAX_ANSWERS}", "101"]),
        ({"answers": [{"movieId": 1}]}, ["body.answers.0.rating is required"]),
        ({"answers": [{"movieId": 0, "rating": 4}]}, ["body.answers.0.movieId"]),
        ({"n": 0}, ["body.n", "from 1 to 100"]),
        ({"n": 101}, ["body.n", "from 1 to 100"]),
        ({"answer": []}, ["body.answer is not a field"]),
    ],
    ids=[
        "unknown movie", "above the scale", "below the scale", "beyond any scale", "too many answers",
        "no rating", "bad movieId", "n too small", "n too large", "unknown field",
    ],
)  # fmt: skip
def test_bad_input_is_a_422_in_one_sentence(client: TestClient, body: dict[str, object], fragments: list[str]) -> None:
    response = client.post("/onboarding/next", json=body)
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert detail.endswith(".") and "\n" not in detail, detail
    for fragment in fragments:
        assert fragment in detail, detail


def documented_schemas(client: TestClient, path: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The OpenAPI schema of ``POST path``'s request body and, by status, of its JSON responses."""
    operation = client.get("/openapi.json").json()["paths"][path]["post"]
    responses = {
        status: body.get("content", {}).get("application/json", {}).get("schema")
        for status, body in operation["responses"].items()
    }
    return operation["requestBody"]["content"]["application/json"]["schema"], responses


def test_the_endpoint_is_documented(client: TestClient) -> None:
    request, responses = documented_schemas(client, "/onboarding/next")
    assert responses["200"] == {"$ref": "#/components/schemas/OnboardingListOut"}
    for status in ("413", "422"):
        assert responses[status] == {"$ref": "#/components/schemas/ErrorOut"}
    assert request == {"$ref": "#/components/schemas/InterviewIn"}


def test_the_list_after_an_interview_uses_not_seen(watch_run_dir: Path) -> None:
    answers = [{"movieId": movie, "rating": stars} for movie, stars in RATED]
    with TestClient(create_app(load_settings(run_dir=watch_run_dir))) as client:
        before = client.post("/onboarding/recommendations", json={"answers": answers})
        assert before.status_code == 200, before.text
        assert before.json()["fallback"] is False and before.json()["ignored"] == []
        first = [movie["movieId"] for movie in before.json()["recommendations"]]
        assert before.json() == movierec.load(watch_run_dir).recommend(dict(RATED), not_seen=[]).to_dict()
        unseen = [{"movieId": movie, "rating": None} for movie in first[:3]]
        after = client.post("/onboarding/recommendations", json={"answers": answers + unseen, "n": 10})
        assert after.status_code == 200, after.text
        assert [movie["movieId"] for movie in after.json()["recommendations"]] != first
        expected = movierec.load(watch_run_dir).recommend(dict(RATED), not_seen=first[:3])
        assert after.json() == expected.to_dict()
        nothing_rated = client.post("/onboarding/recommendations", json={"answers": unseen, "genres": ["Comedy"]})
        assert nothing_rated.json()["fallback"] is True
        assert all("Comedy" in movie["genres"] for movie in nothing_rated.json()["recommendations"])


@pytest.mark.parametrize(
    ("body", "fragments"),
    [
        ({"answers": [{"movieId": 999_999, "rating": None}]}, ["movie 999999", "catalog"]),
        ({"answers": [{"movieId": 1, "rating": 7}]}, ["rating 7.0", "0.5 to 5"]),
        ({"answers": [{"movieId": 1, "rating": None}] * (MAX_ANSWERS + 1)}, [f"at most {MAX_ANSWERS}", "101"]),
        ({"n": 0}, ["body.n", "from 1 to 100"]),
        ({"genres": ["Nope"]}, ["body.genres", "Nope"]),
    ],
    ids=["unknown movie", "above the scale", "too many answers", "n too small", "unknown genre"],
)  # fmt: skip
def test_bad_input_for_the_list_is_a_422(client: TestClient, body: dict[str, object], fragments: list[str]) -> None:
    response = client.post("/onboarding/recommendations", json=body)
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    for fragment in fragments:
        assert fragment in detail, detail


def test_the_list_endpoint_is_documented(client: TestClient) -> None:
    request, responses = documented_schemas(client, "/onboarding/recommendations")
    assert responses["200"] == {"$ref": "#/components/schemas/RecommendationsOut"}
    assert request == {"$ref": "#/components/schemas/InterviewListIn"}


# ---------------------------------------------------------------------------------------------------- the CLI


def interview(
    args: list[str], typed: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "stdin", io.StringIO(typed))
    code = main(["interview", *args])
    captured = capsys.readouterr()
    return code, " ".join(captured.out.split()), captured.err


def test_the_cli_asks_again_after_bad_stars_then_recommends(
    run_dir: Path, engine: Recommender, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    typed = "4.5\nn\nseven\n9\n\n2\nq\n"
    code, out, err = interview([str(run_dir), "--questions", "5", "-n", "3"], typed, monkeypatch, capsys)
    assert code == 0, err
    asked = ids(engine.next_questions([], 1))
    assert "1/5" in out and "3/5" in out and "4/5" in out and "5/5" not in out, out  # q stopped at question 4
    assert "'seven' is not an answer; type stars from 0.5 to 5, n if not seen, q to stop." in out
    assert "The rating 9.0 for movie" in out and "outside the scale" in out
    assert "Recommendations from your 2 rating(s) and 1 not seen" in out
    assert str(engine.find_movie(asked[0]).title) in out


def test_the_cli_ends_with_the_input(
    run_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = interview([str(run_dir), "--questions", "3"], "n\n", monkeypatch, capsys)
    assert code == 0, err
    assert "2/3" in out and "3/3" not in out
    assert "No movie rated: popular and well-rated movies" in out


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--questions", "0"], "--questions 0 is not valid; ask 1 to 100 questions."),
        (["--questions", str(MAX_ANSWERS + 1)], f"--questions {MAX_ANSWERS + 1} is not valid"),
        (["-n", "0"], "The list length 0 is not valid"),
    ],
)
def test_bad_options_exit_2_before_asking(
    run_dir: Path, args: list[str], fragment: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = interview([str(run_dir), *args], "5\n" * 5, monkeypatch, capsys)
    assert code == 2
    assert fragment in " ".join(err.split())
    assert "1/" not in out


def test_a_missing_run_exits_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = interview([str(tmp_path / "nothing")], "", monkeypatch, capsys)
    assert code == 2 and err.startswith("error:"), err


@pytest.mark.slow
def test_the_cli_reads_a_pipe(run_dir: Path) -> None:
    """A real process with its answers piped in: each one shown after its question, then the list and why."""
    done = subprocess.run(
        [sys.executable, "-m", "movierec", "interview", str(run_dir), "--questions", "3", "-n", "4"],
        input="5\nn\n1\n", capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    out = " ".join(done.stdout.split())
    assert "q = stop: 5" in out and "q = stop: n" in out and "q = stop: 1" in out, out
    assert "Recommendations from your 2 rating(s) and 1 not seen" in out
    assert "because you" in out


def test_the_cli_list_uses_not_seen(
    watch_run_dir: Path, watch_engine: Recommender, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two stars and a "not seen": the list shown is the one the three answers lead to, not the stars' alone."""
    answers: list[tuple[int, float | None]] = []
    for stars in (5.0, None, 4.0):
        answers.append((ids(watch_engine.next_questions(answers, 1))[0], stars))
    code, out, err = interview([str(watch_run_dir), "--questions", "3", "-n", "5"], "5\nn\n4\n", monkeypatch, capsys)
    assert code == 0, err
    shaped = watch_engine.recommend_after_interview(answers, 5).recommendations
    listing = out[out.index("Recommendations from your 2 rating(s) and 1 not seen") :]
    places = [listing.find(str(movie.title)[:12]) for movie in shaped]  # long titles wrap in the table
    assert -1 not in places and places == sorted(places), out
