"""One JSON form: the CLI's ``--json`` and the HTTP API answer the same request with the same JSON."""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from movierec.cli import main
from movierec.serve import create_app, load_settings

from serve_fixtures import build_run

with warnings.catch_warnings():  # starlette asks for httpx2, which is not a dependency here
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")
UNKNOWN = 424242


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_run(tmp_path_factory.mktemp("forms") / "run")


@pytest.fixture(scope="module")
def client(run_dir: Path) -> Iterator[TestClient]:
    with TestClient(create_app(load_settings(run_dir=run_dir))) as test_client:
        yield test_client


def ratings_body(*pairs: tuple[int, float], **extra: Any) -> dict[str, Any]:
    return {"ratings": [{"movieId": m, "rating": r} for m, r in pairs], **extra}


# (CLI arguments after the run folder, HTTP method, path, JSON body) for the same request
SAME_REQUESTS = {
    "known user": (["recommend", "--user", "7", "-n", "5"], "GET", "/users/7/recommendations?n=5", None),
    "known user, filtered": (
        ["recommend", "--user", "7", "-n", "5", "--genre", "Drama", "--exclude-genre", "War", "--years", "-1995",
         "--min-ratings", "0"],
        "GET", "/users/7/recommendations?n=5&genre=Drama&exclude_genre=War&years=-1995&min_ratings=0", None,
    ),
    "new user": (
        ["recommend", "--ratings", "1:5,2:1.5,32:4.5,47:4,50:5", "-n", "6"],
        "POST", "/recommendations", ratings_body((1, 5), (2, 1.5), (32, 4.5), (47, 4), (50, 5), n=6),
    ),
    "new user, an unknown movie": (
        ["recommend", "--ratings", f"1:5,{UNKNOWN}:4", "-n", "4", "--genre", "Comedy", "--min-ratings", "0"],
        "POST", "/recommendations", ratings_body((1, 5), (UNKNOWN, 4), n=4, genres=["Comedy"], min_ratings=0),
    ),
    "new user, the popular fallback": (
        ["recommend", "--ratings", f"{UNKNOWN}:4", "-n", "5"],
        "POST", "/recommendations", ratings_body((UNKNOWN, 4), n=5),
    ),
    "new user, the fallback filtered to nothing": (
        ["recommend", "--ratings", f"{UNKNOWN}:4", "--years", "1900-1901"],
        "POST", "/recommendations", ratings_body((UNKNOWN, 4), years="1900-1901"),
    ),
    "similar by id": (
        ["similar", "1", "-n", "5", "--min-ratings", "0"], "GET", "/movies/1/similar?n=5&min_ratings=0", None,
    ),
    "similar by title": (["similar", "Toy Story (1995)"], "GET", "/movies/1/similar", None),
    "onboarding": (["onboard", "-n", "6"], "GET", "/onboarding?n=6", None),
}  # fmt: skip


@pytest.mark.parametrize("name", SAME_REQUESTS)
def test_cli_json_equals_the_api_json(
    name: str, run_dir: Path, client: TestClient, capsys: pytest.CaptureFixture[str]
) -> None:
    command, method, path, body = SAME_REQUESTS[name]
    assert main([command[0], str(run_dir), *command[1:], "--json"]) == 0
    from_cli = json.loads(capsys.readouterr().out)
    response = client.request(method, path, json=body)
    assert response.status_code == 200, response.text
    assert from_cli == response.json()


def test_the_fallback_flag_means_no_rating_could_be_used(run_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Computed once for both: true exactly when every given movie was ignored, even if filters empty the list."""
    cases = {f"1:5,{UNKNOWN}:4": False, f"{UNKNOWN}:4,{UNKNOWN}:3": True}
    for given, fallback in cases.items():
        for years in ("1900-1901", "-2100"):
            assert main(["recommend", str(run_dir), "--ratings", given, "--years", years, "--json"]) == 0
            document = json.loads(capsys.readouterr().out)
            assert document["fallback"] is fallback and document["ignored"] == [UNKNOWN]
            assert bool(document["recommendations"]) is (years == "-2100")
