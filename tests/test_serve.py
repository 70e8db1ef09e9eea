"""The HTTP service through FastAPI's TestClient: every endpoint, every bad input, limits, CORS, reloads."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from movierec.artifact.run import load_run
from movierec.cli import main
from movierec.errors import MovieRecError
from movierec.serve import create_app, load_settings
from movierec.serve.middleware import BodyLimit, TimeLimit
from movierec.serve.search import TitleIndex
from movierec.serve.state import ModelState, load

from serve_fixtures import N_ITEMS, build_run

with warnings.catch_warnings():  # starlette asks for httpx2, which is not a dependency here
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")
TOKEN = "test-admin-token-0123456789"


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A root folder with two runs: ``a`` (biased-mf) and ``b`` (another seed, named differently)."""
    root = tmp_path_factory.mktemp("runs")
    build_run(root / "a", seed=0)
    build_run(root / "b", seed=1, model_name="sigmoid-mf")
    return root


@pytest.fixture(scope="module")
def client(runs: Path) -> Iterator[TestClient]:
    with TestClient(create_app(load_settings(run_dir=runs / "a"))) as test_client:
        yield test_client


@pytest.fixture()
def admin(runs: Path) -> Iterator[TestClient]:
    """A fresh app per test (reloads change its state) with an admin token."""
    settings = load_settings(run_dir=runs / "a", admin_token=TOKEN)
    with TestClient(create_app(settings)) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def rated(runs: Path) -> dict[int, set[int]]:
    """Each training user's rated movieIds."""
    train = load_run(runs / "a").train
    users, items = train.user_vocab.raw(train.users), train.item_vocab.raw(train.items)
    out: dict[int, set[int]] = {}
    for user, item in zip(users.tolist(), items.tolist(), strict=True):
        out.setdefault(user, set()).add(item)
    return out


def ratings(*pairs: tuple[int, float]) -> list[dict[str, float]]:
    return [{"movieId": m, "rating": r} for m, r in pairs]


def assert_422(response: httpx.Response, field: str, *fragments: str) -> dict[str, Any]:
    """A 422 whose errors name ``field`` and whose message holds every fragment (e.g. the valid range)."""
    assert response.status_code == 422, response.text
    body = response.json()
    assert isinstance(body["detail"], str)
    fields = [e["field"] for e in body["errors"]]
    assert field in fields, fields
    for fragment in fragments:
        assert fragment in body["detail"], body["detail"]
    return body


FIVE = ratings((1, 5), (2, 1.5), (32, 4.5), (47, 4), (50, 5))

# ------------------------------------------------------------------------------------------------- health


def test_health_names_the_model_and_catalog(client: TestClient) -> None:
    body = client.get("/health").json()
    assert body["status"] == "ok"
    assert body["model"] == "biased-mf"
    assert body["catalog_size"] == N_ITEMS
    assert body["n_users"] == 300 and body["dim"] == 4
    assert (body["scale_low"], body["scale_high"]) == (0.5, 5.0)
    assert body["generation"] == 1 and body["run"] == "a"
    assert "Comedy" in body["genres"]


def test_page_and_static_files_are_served(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert '<script src="/static/app.js"' in page.text
    for name, kind in (("app.js", "javascript"), ("style.css", "text/css")):
        response = client.get(f"/static/{name}")
        assert response.status_code == 200 and kind in response.headers["content-type"]


@pytest.mark.parametrize(
    "path",
    [
        "/static/../settings.py",
        "/static/%2e%2e/settings.py",
        "/static/..%2fapp.py",
        "/static/%2e%2e%2f%2e%2e/errors.py",
    ],
)
def test_static_paths_cannot_leave_the_static_folder(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert "Settings" not in response.text and "def " not in response.text


def test_openapi_docs_are_published(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    for path in ("/health", "/movies", "/movies/{movieId}", "/movies/{movieId}/similar",
                 "/users/{userId}/recommendations", "/recommendations", "/predict", "/onboarding",
                 "/admin/reload"):  # fmt: skip
        assert path in schema["paths"], path
    assert client.get("/docs").status_code == 200


def test_unknown_route_is_a_json_404(client: TestClient) -> None:
    response = client.get("/no/such/thing")
    assert response.status_code == 404 and response.json() == {"detail": "Not Found"}


# ------------------------------------------------------------------------------------------------- movies


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("Toy Story", 1),
        ("toy story", 1),
        ("toy stroy", 1),  # swapped letters
        ("usual suspcts", 50),  # a missing letter
        ("usuall suspects", 50),  # an extra letter
        ("miserables", 73),  # accent folded
        ("the usual", 50),  # "Usual Suspects, The": the article is a word like any other
        ("jumanj", 2),  # a prefix, as typed
    ],
)
def test_search_is_case_accent_and_typo_tolerant(client: TestClient, query: str, expected: int) -> None:
    body = client.get("/movies", params={"query": query}).json()
    assert body["movies"], body
    assert body["movies"][0]["movieId"] == expected
    assert body["total"] >= 1


def test_search_filters_by_genre_and_limits(client: TestClient) -> None:
    body = client.get("/movies", params={"genre": "Comedy", "limit": 5}).json()
    assert len(body["movies"]) == 5 and body["total"] > 5
    assert all("Comedy" in m["genres"] for m in body["movies"])
    assert client.get("/movies", params={"query": "toy", "genre": "horror"}).json()["movies"] == []


def test_empty_search_lists_the_most_rated(client: TestClient) -> None:
    movies = client.get("/movies", params={"limit": 10}).json()["movies"]
    counts = [m["n_ratings"] for m in movies]
    assert counts == sorted(counts, reverse=True) and len(movies) == 10


def test_search_without_a_match_is_empty(client: TestClient) -> None:
    assert client.get("/movies", params={"query": "qqqqzzzz"}).json() == {"query": "qqqqzzzz", "total": 0, "movies": []}


@pytest.mark.parametrize(
    ("params", "field", "fragment"),
    [
        ({"limit": 0}, "query.limit", "from 1 to 100"),
        ({"limit": 101}, "query.limit", "from 1 to 100"),
        ({"limit": "many"}, "query.limit", "from 1 to 100"),
        ({"query": "x" * 201}, "query.query", "at most 200 characters"),
        ({"genre": "Cowboys"}, "query.genre", "valid genres: Action"),
    ],
)
def test_bad_search_parameters_are_422(client: TestClient, params: dict, field: str, fragment: str) -> None:
    assert_422(client.get("/movies", params=params), field, fragment)


def test_get_movie(client: TestClient) -> None:
    body = client.get("/movies/1").json()
    assert body["title"] == "Toy Story (1995)" and body["year"] == 1995
    assert "Animation" in body["genres"] and body["n_ratings"] > 0


def test_unknown_movie_is_404_with_a_message(client: TestClient) -> None:
    for path in ("/movies/999999", "/movies/999999/similar"):
        response = client.get(path)
        assert response.status_code == 404
        assert "999999 is not in this model's catalog" in response.json()["detail"]


@pytest.mark.parametrize("value", ["0", "-3", "abc", "1.5", str(2**31)])
def test_bad_movie_id_in_path_is_422(client: TestClient, value: str) -> None:
    assert_422(client.get(f"/movies/{value}"), "path.movieId", "from 1 to 2147483647")


def test_similar_movies(client: TestClient) -> None:
    body = client.get("/movies/1/similar", params={"n": 5, "min_ratings": 0}).json()
    assert body["movie"]["movieId"] == 1
    ids = [s["movieId"] for s in body["similar"]]
    assert len(ids) == 5 and 1 not in ids
    scores = [s["score"] for s in body["similar"]]
    assert scores == sorted(scores, reverse=True)
    assert all(-1 <= s["similarity"] <= 1 for s in body["similar"])


@pytest.mark.parametrize("n", [0, 101, -1])
def test_similar_n_outside_range_is_422(client: TestClient, n: int) -> None:
    assert_422(client.get("/movies/1/similar", params={"n": n}), "query.n", "query.n must be a number from 1 to 100")


# -------------------------------------------------------------------------------------------------- users


def test_user_recommendations_skip_rated_movies(client: TestClient, rated: dict[int, set[int]]) -> None:
    body = client.get("/users/7/recommendations", params={"n": 20, "min_ratings": 0}).json()
    assert body["userId"] == 7
    ids = [r["movieId"] for r in body["recommendations"]]
    assert len(ids) == 20 and not set(ids) & rated[7]
    first = body["recommendations"][0]
    assert first["kind"] == "personal" and "★" in first["explanation"]


def test_user_recommendations_filters(client: TestClient) -> None:
    params: dict[str, Any] = {"n": 10, "genre": ["Drama", "comedy"], "exclude_genre": "Romance", "years": "1995-"}
    recs = client.get("/users/7/recommendations", params=params).json()["recommendations"]
    assert recs
    for rec in recs:
        assert {"Drama", "Comedy"} & set(rec["genres"]) and "Romance" not in rec["genres"]
        assert rec["year"] >= 1995


def test_unknown_user_is_404_with_a_message(client: TestClient) -> None:
    response = client.get("/users/99999/recommendations")
    assert response.status_code == 404
    assert "99999 is not in this model's training data" in response.json()["detail"]


@pytest.mark.parametrize(
    ("params", "field", "fragment"),
    [
        ({"n": 0}, "query.n", "from 1 to 100"),
        ({"n": 1000}, "query.n", "from 1 to 100"),
        ({"years": "nineties"}, "query.years", "1990-2000"),
        ({"years": "2000-1990"}, "query.years", "empty"),
        ({"genre": "Drama", "exclude_genre": "drama"}, "query.exclude_genre", "both included and excluded"),
        ({"genre": "Noir"}, "query.genre", "valid genres"),
        ({"min_ratings": -1}, "query.min_ratings", "from 0 to 1000000"),
    ],
)
def test_bad_user_list_parameters_are_422(client: TestClient, params: dict, field: str, fragment: str) -> None:
    assert_422(client.get("/users/7/recommendations", params=params), field, fragment)


def test_bad_user_id_is_422(client: TestClient) -> None:
    assert_422(client.get("/users/0/recommendations"), "path.userId", "from 1 to 2147483647")


# ------------------------------------------------------------------------------------------ new users


def test_new_user_recommendations_skip_rated_and_explain(client: TestClient) -> None:
    body = client.post("/recommendations", json={"ratings": FIVE, "n": 10, "min_ratings": 0}).json()
    ids = [r["movieId"] for r in body["recommendations"]]
    assert len(ids) == 10 and not set(ids) & {1, 2, 32, 47, 50}
    assert body["ignored"] == [] and body["fallback"] is False
    first = body["recommendations"][0]
    assert first["kind"] == "personal" and first["because"]
    assert {b["movieId"] for b in first["because"]} <= {1, 2, 32, 47, 50}
    assert 0.5 <= first["predicted_rating"] <= 5.0


def test_recommendations_follow_the_ratings(client: TestClient) -> None:
    """The same code path as the CLI: the answer equals Recommender.recommend_new_user's."""
    app_rec = client.app.state.models.current.recommender  # type: ignore[attr-defined]
    expected, _ = app_rec.recommend_new_user([(r["movieId"], r["rating"]) for r in FIVE], 7)
    body = client.post("/recommendations", json={"ratings": FIVE, "n": 7}).json()
    assert [r["movieId"] for r in body["recommendations"]] == [r.movieId for r in expected]


def test_reasons_say_liked_and_disliked_as_the_stars_do(client: TestClient) -> None:
    """Text and structure both: ``summary`` reads "because you liked …; because you disliked …", each reason
    carries ``reason`` (and ``liked``), and none names a 1.5★ movie as liked or a 4★+ one as disliked."""
    stars = {r["movieId"]: r["rating"] for r in FIVE}
    body = client.post("/recommendations", json={"ratings": FIVE, "n": 10}).json()
    seen = set()
    for rec in body["recommendations"]:
        assert rec["summary"] in rec["explanation"]
        named = dict(part.removeprefix("because you ").split(" ", 1) for part in rec["summary"].split("; "))
        for b in rec["because"]:
            assert b["rating"] == stars[b["movieId"]] and b["contribution"] > 0
            assert b["liked"] is (b["reason"] == "liked")
            assert (stars[b["movieId"]] >= 4) if b["liked"] else (stars[b["movieId"]] <= 2), b
            assert f"{b['title']} ({b['rating']:g}★)" in named[b["reason"]]
            seen.add(b["reason"])
    assert seen == {"liked", "disliked"}
    for rec in client.get("/users/7/recommendations").json()["recommendations"]:
        assert {b["reason"] for b in rec["because"]} <= {"liked", "disliked"} and rec["summary"]


def test_unknown_movie_ids_are_listed_in_ignored(client: TestClient) -> None:
    body = client.post("/recommendations", json={"ratings": ratings((1, 5), (424242, 4), (777777, 2))}).json()
    assert sorted(body["ignored"]) == [424242, 777777]
    assert body["fallback"] is False and body["recommendations"]


def test_no_usable_rating_gives_the_popular_fallback(client: TestClient) -> None:
    body = client.post("/recommendations", json={"ratings": ratings((424242, 4))}).json()
    assert body["ignored"] == [424242] and body["fallback"] is True
    assert all(r["kind"] == "popular" for r in body["recommendations"])
    empty = client.post("/recommendations", json={}).json()
    assert empty["fallback"] is True and len(empty["recommendations"]) == 10


def test_new_user_filters_in_the_body(client: TestClient) -> None:
    body = {"ratings": FIVE, "n": 5, "genres": ["Drama"], "exclude_genres": ["War"], "years": "-1995"}
    recs = client.post("/recommendations", json=body).json()["recommendations"]
    assert recs
    for rec in recs:
        assert "Drama" in rec["genres"] and "War" not in rec["genres"] and rec["year"] <= 1995


@pytest.mark.parametrize(
    ("body", "field", "fragments"),
    [
        ({"ratings": ratings((1, 5.5))}, "body.ratings.0.rating", ["from 0.5 to 5", "the model's rating scale"]),
        ({"ratings": ratings((1, 4), (2, 0))}, "body.ratings.1.rating", ["from 0.5 to 5"]),
        ({"ratings": ratings((1, 11))}, "body.ratings.0.rating", ["from 0 to 10"]),
        ({"ratings": ratings((1, -1))}, "body.ratings.0.rating", ["from 0 to 10"]),
        ({"ratings": [{"movieId": 1, "rating": "five"}]}, "body.ratings.0.rating", ["from 0 to 10"]),
        ({"ratings": FIVE, "n": 0}, "body.n", ["body.n must be a number from 1 to 100; got 0"]),
        ({"ratings": FIVE, "n": 101}, "body.n", ["from 1 to 100"]),
        ({"ratings": FIVE, "n": 2.5}, "body.n", ["from 1 to 100"]),
        ({"ratings": ratings(*[(i, 3) for i in range(1, 502)])}, "body.ratings", ["at most 500 items; got 501"]),
        ({"ratings": [{"movieId": 0, "rating": 3}]}, "body.ratings.0.movieId", ["from 1 to 2147483647"]),
        ({"ratings": [{"movieId": 1}]}, "body.ratings.0.rating", ["is required"]),
        ({"ratings": [{"movieId": 1, "rating": 3, "weight": 2}]}, "body.ratings.0.weight", ["not a field"]),
        ({"ratings": {"1": 5}}, "body.ratings", ["must be a JSON list"]),
        ({"ratings": FIVE, "genres": ["Cowboys"]}, "body.genres", ["valid genres"]),
        ({"ratings": FIVE, "years": "soon"}, "body.years", ["1990-2000"]),
        ({"ratings": FIVE, "genres": ["x"] * 21}, "body.genres", ["at most 20 items"]),
    ],
)
def test_bad_new_user_bodies_are_422(client: TestClient, body: dict, field: str, fragments: list[str]) -> None:
    assert_422(client.post("/recommendations", json=body), field, *fragments)


@pytest.mark.parametrize(
    ("content", "field", "fragment"),
    [
        (b'{"ratings": [', "body.13", "not valid JSON"),
        (b"[1, 2, 3]", "body", "must be a JSON object"),
        (b'"hello"', "body", "must be a JSON object"),
        (b'{"ratings": [{"movieId": 1, "rating": NaN}]}', "body.ratings.0.rating", "from 0 to 10"),
        (b'{"ratings": [{"movieId": 1, "rating": Infinity}]}', "body.ratings.0.rating", "from 0 to 10"),
        (b'{"n": "\x80\x81"}', "body", "send UTF-8 encoded JSON"),
    ],
)
def test_malformed_bodies_are_422(client: TestClient, content: bytes, field: str, fragment: str) -> None:
    response = client.post("/recommendations", content=content, headers={"Content-Type": "application/json"})
    assert_422(response, field, fragment)


def test_oversized_body_is_413(client: TestClient) -> None:
    big = json.dumps({"ratings": FIVE, "years": "x" * 70_000}).encode()
    response = client.post("/recommendations", content=big, headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    assert "larger than 65,536 bytes" in response.json()["detail"]


def test_oversized_streamed_body_without_length_is_413(client: TestClient) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"ratings": []'
        for _ in range(100):
            yield b" " * 1000
        yield b"}"

    response = client.post("/recommendations", content=chunks(), headers={"Content-Type": "application/json"})
    assert response.status_code == 413


# -------------------------------------------------------------------------------------------------- predict


def test_predict_pairs(client: TestClient) -> None:
    pairs = [{"userId": 7, "movieId": 1}, {"userId": 99999, "movieId": 1}, {"userId": 7, "movieId": 888888}]
    body = client.post("/predict", json={"pairs": pairs}).json()
    first, unknown_user, unknown_movie = body["predictions"]
    assert first["known_user"] and first["known_movie"] and 0.5 <= first["predicted_rating"] <= 5
    assert not unknown_user["known_user"] and unknown_user["known_movie"]
    assert unknown_movie["known_user"] and not unknown_movie["known_movie"]
    app_rec = client.app.state.models.current.recommender  # type: ignore[attr-defined]
    assert first["predicted_rating"] == app_rec.predict_pairs([7], [1])[0].predicted_rating


def test_predict_for_a_new_user(client: TestClient) -> None:
    body = client.post("/predict", json={"ratings": FIVE + ratings((555555, 3)), "movieIds": [3, 4, 666666]}).json()
    assert body["ignored"] == [555555]
    assert [p["movieId"] for p in body["predictions"]] == [3, 4, 666666]
    assert [p["known_movie"] for p in body["predictions"]] == [True, True, False]
    assert all(p["userId"] is None and 0.5 <= p["predicted_rating"] <= 5 for p in body["predictions"])


@pytest.mark.parametrize(
    ("body", "field", "fragment"),
    [
        ({}, "body", "give either pairs, or ratings together with movieIds"),
        ({"pairs": [{"userId": 1, "movieId": 1}], "movieIds": [1]}, "body", "give either pairs"),
        ({"ratings": FIVE}, "body", "ratings and movieIds go together"),
        ({"pairs": []}, "body.pairs", "at least 1 item"),
        ({"pairs": [{"userId": 1, "movieId": 1}] * 501}, "body.pairs", "at most 500 items; got 501"),
        ({"ratings": ratings((1, 9)), "movieIds": [2]}, "body.ratings.0.rating", "from 0.5 to 5"),
        ({"pairs": [{"userId": -1, "movieId": 1}]}, "body.pairs.0.userId", "from 1 to 2147483647"),
    ],
)
def test_bad_predict_bodies_are_422(client: TestClient, body: dict, field: str, fragment: str) -> None:
    assert_422(client.post("/predict", json=body), field, fragment)


# ----------------------------------------------------------------------------------------------- onboarding


def test_onboarding(client: TestClient) -> None:
    movies = client.get("/onboarding", params={"n": 6}).json()["movies"]
    assert len(movies) == 6 and len({m["movieId"] for m in movies}) == 6
    assert all(m["reason"] and m["spread"] >= 0 for m in movies)


@pytest.mark.parametrize("n", [0, 101])
def test_onboarding_n_outside_range_is_422(client: TestClient, n: int) -> None:
    assert_422(client.get("/onboarding", params={"n": n}), "query.n", "from 1 to 100")


# ---------------------------------------------------------------------------------------------------- CORS


def test_cors_is_off_by_default(client: TestClient) -> None:
    response = client.get("/health", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in response.headers
    preflight = client.options(
        "/recommendations",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert "access-control-allow-origin" not in preflight.headers


def test_cors_allows_only_configured_origins(runs: Path) -> None:
    settings = load_settings(run_dir=runs / "a", cors_origins="https://app.example, https://other.example")
    with TestClient(create_app(settings)) as test_client:
        allowed = test_client.get("/health", headers={"Origin": "https://app.example"})
        assert allowed.headers["access-control-allow-origin"] == "https://app.example"
        other = test_client.get("/health", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers


# ---------------------------------------------------------------------------------------------------- admin


def test_admin_reload_is_disabled_without_a_configured_token(client: TestClient) -> None:
    response = client.post("/admin/reload", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 403 and "MOVIEREC_ADMIN_TOKEN" in response.json()["detail"]


def test_admin_reload_needs_the_token(admin: TestClient) -> None:
    missing = admin.post("/admin/reload")
    assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
    wrong = admin.post("/admin/reload", headers={"Authorization": "Bearer not-the-token-at-all"})
    assert wrong.status_code == 403
    basic = admin.post("/admin/reload", headers={"Authorization": f"Basic {TOKEN}"})
    assert basic.status_code == 401
    assert admin.get("/health").json()["generation"] == 1


def test_admin_reload_swaps_the_model(admin: TestClient) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    same = admin.post("/admin/reload", headers=auth)
    assert same.status_code == 200 and same.json()["generation"] == 2 and same.json()["previous_generation"] == 1
    swapped = admin.post("/admin/reload", headers=auth, json={"run_dir": "b"})
    assert swapped.status_code == 200, swapped.text
    assert swapped.json()["model"] == "sigmoid-mf" and swapped.json()["run"] == "b"
    health = admin.get("/health").json()
    assert health["model"] == "sigmoid-mf" and health["generation"] == 3
    assert admin.post("/recommendations", json={"ratings": FIVE}).status_code == 200


def test_admin_reload_with_several_workers_points_to_sighup(runs: Path) -> None:
    settings = load_settings(run_dir=runs / "a", admin_token=TOKEN, workers=2)
    with TestClient(create_app(settings)) as test_client:
        response = test_client.post("/admin/reload", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 409 and "send SIGHUP to the main process" in response.json()["detail"]


@pytest.mark.parametrize("run_dir", ["../a", "/etc", "a/../../a", "", "b/../..", "\x00"])
def test_admin_reload_refuses_paths_outside_the_root(admin: TestClient, run_dir: str) -> None:
    response = admin.post("/admin/reload", headers={"Authorization": f"Bearer {TOKEN}"}, json={"run_dir": run_dir})
    assert response.status_code == 422
    assert admin.get("/health").json()["generation"] == 1


def test_admin_reload_refuses_symlinks_leading_out(admin: TestClient, runs: Path, tmp_path: Path) -> None:
    outside = build_run(tmp_path / "outside")
    link = runs / "sneaky"
    link.symlink_to(outside, target_is_directory=True)
    try:
        response = admin.post("/admin/reload", headers={"Authorization": f"Bearer {TOKEN}"}, json={"run_dir": "sneaky"})
        assert response.status_code == 422 and "outside the folder reloads may use" in response.json()["detail"]
    finally:
        link.unlink()


def test_failed_reload_keeps_serving_the_old_model(admin: TestClient, runs: Path) -> None:
    (runs / "empty").mkdir(exist_ok=True)
    response = admin.post("/admin/reload", headers={"Authorization": f"Bearer {TOKEN}"}, json={"run_dir": "empty"})
    assert response.status_code == 422 and "no manifest.json" in response.json()["detail"]
    assert admin.get("/health").json() | {"loaded_at": 0} == admin.get("/health").json() | {"loaded_at": 0}
    assert admin.get("/health").json()["generation"] == 1
    assert admin.post("/recommendations", json={"ratings": FIVE}).status_code == 200


def test_in_flight_requests_finish_on_the_model_they_started_with(runs: Path) -> None:
    state = ModelState(load(runs / "a"), runs)
    before = state.current
    previous, new = state.reload("b")
    assert previous is before and state.current is new and new.generation == 2
    recs, _ = before.recommender.recommend_new_user([(1, 5.0)], 5)  # the old snapshot still answers
    assert len(recs) == 5 and before.model == "biased-mf" and new.model == "sigmoid-mf"


def test_no_request_fails_while_models_swap(runs: Path) -> None:
    """Requests and reloads interleave on one event loop (reloads load in a thread): every answer is a 200."""
    settings = load_settings(run_dir=runs / "a", admin_token=TOKEN)
    app = create_app(settings)
    auth = {"Authorization": f"Bearer {TOKEN}"}

    async def scenario() -> tuple[list[int], list[int], set[str]]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:

            async def ask(k: int) -> tuple[int, str]:
                response = await http.post("/recommendations", json={"ratings": FIVE[: 1 + k % 5], "n": 5})
                model = (await http.get("/health")).json()["model"]
                return response.status_code, model

            async def swap(run: str) -> int:
                await asyncio.sleep(0.01)
                return (await http.post("/admin/reload", headers=auth, json={"run_dir": run})).status_code

            results = await asyncio.gather(*(ask(k) for k in range(60)), swap("b"))
            answers, reload_status = results[:-1], results[-1]
            again = await asyncio.gather(*(ask(k) for k in range(20)), swap("a"))
            statuses = [s for s, _ in [*answers, *again[:-1]]]
            models = {m for _, m in [*answers, *again[:-1]]}
            return statuses, [reload_status, again[-1]], models

    statuses, reloads, models = asyncio.run(scenario())
    assert set(statuses) == {200} and len(statuses) == 80
    assert reloads == [200, 200]
    assert "sigmoid-mf" in models


# --------------------------------------------------------------------------------------------- no disk writes


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*")}


def test_no_endpoint_writes_to_disk(
    runs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, isolated_home: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    static = Path(__import__("movierec.serve.app", fromlist=["STATIC_DIR"]).STATIC_DIR)
    before = (snapshot(runs), snapshot(tmp_path), snapshot(isolated_home), snapshot(static))
    settings = load_settings(run_dir=runs / "a", admin_token=TOKEN)
    with TestClient(create_app(settings)) as test_client:
        calls = [
            ("GET", "/health", None), ("GET", "/", None), ("GET", "/static/app.js", None),
            ("GET", "/movies?query=toy", None), ("GET", "/movies/1", None), ("GET", "/movies/1/similar", None),
            ("GET", "/users/7/recommendations", None), ("POST", "/recommendations", {"ratings": FIVE}),
            ("POST", "/predict", {"pairs": [{"userId": 7, "movieId": 1}]}), ("GET", "/onboarding", None),
            ("GET", "/openapi.json", None), ("POST", "/recommendations", {"n": 0}),
        ]  # fmt: skip
        for method, path, body in calls:
            assert test_client.request(method, path, json=body).status_code < 500
        auth = {"Authorization": f"Bearer {TOKEN}"}
        assert test_client.post("/admin/reload", headers=auth).status_code == 200
    assert (snapshot(runs), snapshot(tmp_path), snapshot(isolated_home), snapshot(static)) == before


# ------------------------------------------------------------------------------------------------ middleware


async def _call(app: Any, method: str = "GET", chunks: list[bytes] | None = None, delay: float = 0.0) -> list[dict]:
    """Drive an ASGI app by hand: the messages it sends."""
    sent: list[dict] = []
    chunks = chunks or [b""]
    queue = [{"type": "http.request", "body": c, "more_body": i < len(chunks) - 1} for i, c in enumerate(chunks)]

    async def receive() -> dict:
        if delay:
            await asyncio.sleep(delay)
        return queue.pop(0) if queue else {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {"type": "http", "method": method, "path": "/x", "headers": []}
    await app(scope, receive, send)
    return sent


def test_time_limit_answers_503_when_the_answer_is_late() -> None:
    async def slow(scope: Any, receive: Any, send: Any) -> None:
        await asyncio.sleep(5)

    sent = asyncio.run(_call(TimeLimit(slow, 0.05)))
    assert sent[0]["status"] == 503 and b"longer than 0.05 s" in sent[1]["body"]


def test_time_limit_answers_408_when_the_body_is_late() -> None:
    async def reader(scope: Any, receive: Any, send: Any) -> None:
        while (await receive()).get("more_body"):
            pass

    sent = asyncio.run(_call(TimeLimit(reader, 0.05), "POST", [b"a", b"b", b"c"], delay=0.04))
    assert sent[0]["status"] == 408 and b"did not arrive" in sent[1]["body"]


def test_body_limit_counts_streamed_bytes() -> None:
    received: list[bytes] = []

    async def reader(scope: Any, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            received.append(message["body"])
            if not message.get("more_body"):
                break

    asyncio.run(_call(BodyLimit(reader, 2000), "POST", [b"x" * 1500, b"y" * 400]))
    assert sum(map(len, received)) == 1900
    from starlette.exceptions import HTTPException

    with pytest.raises(HTTPException) as caught:
        asyncio.run(_call(BodyLimit(reader, 2000), "POST", [b"x" * 1500, b"y" * 600]))
    assert caught.value.status_code == 413


# -------------------------------------------------------------------------------------------------- settings


def test_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch, runs: Path) -> None:
    monkeypatch.setenv("MOVIEREC_RUN_DIR", str(runs / "a"))
    monkeypatch.setenv("MOVIEREC_PORT", "9123")
    monkeypatch.setenv("MOVIEREC_CORS_ORIGINS", "https://a.example,https://b.example")
    monkeypatch.setenv("MOVIEREC_MAX_BODY_BYTES", "2048")
    settings = load_settings(port=9000)  # a flag wins over the environment
    assert settings.port == 9000 and settings.run_dir == runs / "a"
    assert settings.cors_origins == ["https://a.example", "https://b.example"]
    assert settings.max_body_bytes == 2048 and settings.cors_origins
    assert settings.allowed_root == runs.resolve()
    env = settings.to_env()
    assert env["MOVIEREC_CORS_ORIGINS"] == "https://a.example,https://b.example" and env["MOVIEREC_PORT"] == "9000"


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"port": 70000}, "--port or MOVIEREC_PORT"),
        ({"workers": 0}, "--workers"),
        ({"cors_origins": "ftp://x"}, "not * or an http(s):// origin"),
        ({"max_body_bytes": 10}, "--max-body-bytes"),
    ],
)
def test_bad_settings_are_one_sentence(overrides: dict, fragment: str) -> None:
    with pytest.raises(MovieRecError) as caught:
        load_settings(**overrides)
    assert fragment in str(caught.value)


def test_blas_threads_are_capped() -> None:
    from threadpoolctl import threadpool_info, threadpool_limits

    from movierec.serve.state import limit_blas_threads

    with threadpool_limits(limits=None):  # restores the test process's own limits afterwards
        limit_blas_threads(1)
        assert {pool["num_threads"] for pool in threadpool_info()} == {1}


def test_a_short_admin_token_is_refused_without_showing_it() -> None:
    with pytest.raises(MovieRecError) as caught:
        load_settings(admin_token="short-secret")
    assert "at least 16 characters" in str(caught.value) and "short-secret" not in str(caught.value)


# ---------------------------------------------------------------------------------------------------- search


def test_title_index_ranks_full_matches_first() -> None:
    titles = ["Matrix, The (1999)", "Matrix Reloaded, The (2003)", "Mattress Story (2001)", "Amélie (2001)"]
    index = TitleIndex(titles, np.array([10, 50, 5, 7]))
    found, total = index.search("the matrix", 10)
    assert found[:2] == [1, 0] or found[:2] == [0, 1]
    assert total == 2
    assert index.search("matirx", 10)[0][:2] in ([0, 1], [1, 0])  # swapped letters
    assert index.search("AMELIE", 10)[0] == [3]
    assert index.search("matrix reloaded", 10)[0][0] == 1
    assert index.search("", 2) == ([1, 0], 4)


# ----------------------------------------------------------------------------------------------------- CLI


def test_serve_refuses_a_bad_run_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", str(tmp_path / "missing")]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "does not exist" in err and "Traceback" not in err
    assert main(["serve", str(tmp_path)]) == 2
    assert "not a complete movierec run" in " ".join(capsys.readouterr().err.split())


def test_serve_refuses_a_busy_port(runs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["serve", str(runs / "a"), "--port", str(port)]) == 2
    assert f"port {port} on 127.0.0.1 is already in use" in " ".join(capsys.readouterr().err.split())


def test_serve_refuses_bad_flags(runs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", str(runs / "a"), "--port", "0"]) == 2
    assert "--port or MOVIEREC_PORT" in capsys.readouterr().err
    assert main(["serve", str(runs / "a"), "--log-level", "loud"]) == 2


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.slow
def test_real_server_reloads_on_sighup(runs: Path) -> None:
    """`movierec serve` in a subprocess: SIGHUP reloads the run folder from disk without stopping."""
    port = _free_port()
    env = {**os.environ, "MOVIEREC_ADMIN_TOKEN": TOKEN}
    command = [sys.executable, "-m", "movierec", "serve", str(runs / "a"), "--port", str(port)]
    server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            assert server.poll() is None, server.stderr.read() if server.stderr else ""
            try:
                health = httpx.get(f"{url}/health", timeout=2).json()
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the server did not start"
                time.sleep(0.3)
        assert health["generation"] == 1
        server.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 60
        while httpx.get(f"{url}/health", timeout=5).json()["generation"] != 2:
            assert time.monotonic() < deadline and server.poll() is None
            time.sleep(0.1)
        assert httpx.post(f"{url}/recommendations", json={"ratings": FIVE}, timeout=10).status_code == 200
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert server.returncode in (0, -signal.SIGTERM)  # uvicorn re-raises SIGTERM after a graceful stop


def test_serving_a_run_does_not_import_torch(tmp_path: Path) -> None:
    """Each worker would pay a second and a few hundred MB for torch it never uses."""
    run = build_run(tmp_path / "run")
    code = (
        "import sys; from movierec.serve import create_app, load_settings; "
        f"from movierec.recommend import Recommender; Recommender.load({str(run)!r}).recommend_new_user([(1, 5.0)]); "
        "sys.exit(3 if 'torch' in sys.modules else 0)"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
