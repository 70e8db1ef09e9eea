"""The public API: the names it promises, that ``import movierec`` stays light, that its answers are the CLI's
and the service's, and that the README's Python quick start runs exactly as written."""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

import movierec
from movierec.cli import main

from markdown_code import ROOT, code_lines, python_blocks
from serve_fixtures import build_run

PUBLIC_NAMES = {
    "PROTOCOLS",
    "Comparison",
    "Data",
    "Eda",
    "Evaluation",
    "MovieExplanation",
    "MovieRecError",
    "Onboarding",
    "Predictions",
    "Recommendations",
    "Recommender",
    "Run",
    "SimilarMovies",
    "Sweep",
    "__version__",
    "compare",
    "eda",
    "evaluate_run",
    "fit",
    "load",
    "load_data",
    "load_run",
    "sweep",
}
"""Every name the package has promised. Removing one from ``__all__`` breaks people's code: list it in
``movierec._DEPRECATED`` (it then warns and points to its replacement) for at least one release first. Add new
public names here."""


def test_all_is_the_recorded_api() -> None:
    exported = set(movierec.__all__)
    deprecated = set(movierec._DEPRECATED)
    assert not PUBLIC_NAMES - exported - deprecated, "removed without a deprecation"
    assert not exported - PUBLIC_NAMES, "new public names: record them in PUBLIC_NAMES"
    assert len(movierec.__all__) == len(exported)


def test_every_public_name_resolves_and_is_documented() -> None:
    for name in movierec.__all__:
        value = getattr(movierec, name)
        if callable(value):
            assert (value.__doc__ or "").strip(), f"movierec.{name} has no docstring"
    assert set(dir(movierec)) >= set(movierec.__all__)
    with pytest.raises(AttributeError, match="no attribute 'nothing_here'"):
        _ = movierec.nothing_here


def test_a_deprecated_name_warns_and_still_works(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(movierec._DEPRECATED, "open_recommender", "load")
    with pytest.warns(DeprecationWarning, match=r"movierec.open_recommender is deprecated; use movierec.load"):
        assert movierec.open_recommender is movierec.load  # type: ignore[attr-defined]


def test_import_is_light() -> None:
    script = "import sys, movierec; movierec.load; assert 'torch' not in sys.modules, 'torch'"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]


# ------------------------------------------------------------------------------------------ recommending


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_run(tmp_path_factory.mktemp("public-api") / "run")


@pytest.fixture(scope="module")
def rec(run_dir: Path) -> movierec.Recommender:
    return movierec.load(run_dir)


def cli_json(capsys: pytest.CaptureFixture[str], *args: str) -> object:
    capsys.readouterr()
    assert main(list(args)) == 0
    return json.loads(capsys.readouterr().out)


def test_a_new_users_list_is_the_clis_json(
    rec: movierec.Recommender, run_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    picks = rec.recommend(ratings={1: 5, 2: 4.5, 3: 1, 424242: 3}, n=5)
    assert len(picks) == 5 and picks.ignored == (424242,) and not picks.fallback
    assert picks.to_dict() == cli_json(capsys, "recommend", str(run_dir), "--ratings", "1:5,2:4.5,3:1,424242:3",
                                       "-n", "5", "--json")  # fmt: skip
    frame = picks.to_frame()
    assert list(frame["movieId"]) == [p.movieId for p in picks]
    assert {"title", "predicted_rating", "summary", "because", "explanation"} <= set(frame.columns)
    assert all(frame["explanation"].str.len() > 0)


def test_a_known_users_list_similar_and_onboarding_are_the_clis_json(
    rec: movierec.Recommender, run_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert rec.recommend(user=7, n=3).to_dict() == cli_json(capsys, "recommend", str(run_dir), "--user", "7",
                                                            "-n", "3", "--json")  # fmt: skip
    similar = rec.similar("Toy Story", 4)
    assert similar.movie.movieId == 1 and len(similar.to_frame()) == 4
    assert similar.to_dict() == cli_json(capsys, "similar", str(run_dir), "Toy Story", "-n", "4", "--json")
    assert rec.onboarding(5).to_dict() == cli_json(capsys, "onboard", str(run_dir), "-n", "5", "--json")


def test_filters(rec: movierec.Recommender) -> None:
    picks = rec.recommend(ratings={1: 5}, n=5, genres=["Comedy"], years="1995-1995", min_ratings=1)
    assert picks and all("Comedy" in p.genres and p.year == 1995 for p in picks)


def test_explain_matches_the_list(rec: movierec.Recommender) -> None:
    ratings = {1: 5.0, 3: 1.0, 6: 5.0}
    first = rec.recommend(ratings=ratings, n=1)[0]
    why = rec.explain(first.movieId, ratings)
    assert why.predicted_rating == first.predicted_rating and why.text == first.explanation.text
    assert why.to_dict()["movieId"] == first.movieId
    assert list(why.to_frame().columns) == ["movieId", "title", "rating", "contribution", "reason"]
    trained = rec.recommend(user=7, n=1)[0]
    assert rec.explain(trained.movieId, user=7).summary == trained.explanation.summary


def test_predict(rec: movierec.Recommender) -> None:
    known = rec.predict([1, 2, 999_999], users=[7, 7, 7]).to_frame()
    assert list(known["known_movie"]) == [True, True, False] and all(known["known_user"])
    new = rec.predict([1, 2], ratings={3: 5}).to_frame()
    assert list(new["userId"]) == [-1, -1] and all(new["predicted_rating"].between(0.5, 5))


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda rec: rec.recommend(n=5), "exactly one of ratings="),
        (lambda rec: rec.recommend({1: 5}, user=7), "exactly one of ratings="),
        (lambda rec: rec.recommend(ratings={1: 9}), "outside the scale"),
        (lambda rec: rec.recommend(user=10**6), "not in this run's training data"),
        (lambda rec: rec.explain(2, ratings={424242: 5}), "None of the rated movies"),
        (lambda rec: rec.similar("no such movie at all"), "no such movie at all"),
    ],
)
def test_bad_questions_are_one_sentence(rec: movierec.Recommender, call: object, message: str) -> None:
    with pytest.raises(movierec.MovieRecError, match=message):
        call(rec)  # type: ignore[operator]


def test_bad_settings_name_the_valid_ones() -> None:
    with pytest.raises(movierec.MovieRecError, match=r"fit\(\) has no setting 'epoch'; valid settings are: .*epochs"):
        movierec.fit("ml-latest-small", epoch=1)
    with pytest.raises(movierec.MovieRecError, match=r"--model 'nope' is not valid; choose one of: .*hybrid"):
        movierec.fit("ml-latest-small", model="nope")
    with pytest.raises(movierec.MovieRecError, match=r"load_data\(\) has no setting 'seed'.*split_seed"):
        movierec.load_data("ml-latest-small", seed=1)
    with pytest.raises(movierec.MovieRecError, match=r"protocol 'nope' is not known; valid protocols are: standard"):
        movierec.evaluate_run("anywhere", protocol="nope")


def test_run_and_comparison(run_dir: Path) -> None:
    run = movierec.load_run(run_dir, label="fixture")
    assert run.model == "biased-mf" and run.settings()["dim"] == 4 and run.label == "fixture"
    assert run.to_dict()["path"] == str(run_dir)
    table = movierec.compare([run, run_dir]).to_frame()
    assert list(table["run"]) == ["fixture", "run"]


def test_data(tmp_path: Path) -> None:
    data = movierec.load_data("ml-latest-small", test_fraction=0.2)
    summary = data.to_dict()
    assert summary["n_ratings"] == 100_836 and summary["n_test"] == len(data.to_frame("test"))
    assert summary["n_train"] + summary["n_test"] == summary["n_ratings"]
    assert list(data.to_frame().columns[:3]) == ["userId", "movieId", "rating"]
    assert data.scale == (0.5, 5.0)
    overview = movierec.eda(data)
    assert overview.to_dict()["ratings"] == "100,836" and "rating_distribution" in overview.figures


# ------------------------------------------------------------------------------------------ the README


def quick_start() -> str:
    blocks = python_blocks(ROOT / "README.md", "Quick start in Python")
    assert len(blocks) == 1 and len(code_lines(blocks[0])) == 5, "the quick start is five lines of Python"
    return blocks[0]


@pytest.fixture(scope="module")
def quick_start_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, object], str]:
    """The README's quick start, run exactly as written in a fresh folder (it trains one epoch on the embedded
    data); its variables and what it printed."""
    work = tmp_path_factory.mktemp("quick-start")
    namespace: dict[str, object] = {}
    printed = io.StringIO()
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(printed), warnings.catch_warnings():
        patch.chdir(work)
        exec(compile(quick_start(), "README.md", "exec"), namespace)
    return namespace, printed.getvalue()


@pytest.mark.slow
def test_the_readme_quick_start_gives_a_list_with_explanations(
    quick_start_run: tuple[dict[str, object], str],
) -> None:
    namespace, printed = quick_start_run
    lists = [value for value in namespace.values() if isinstance(value, movierec.Recommendations)]
    assert len(lists) == 1
    picks = lists[0]
    assert len(picks) == 10 and not picks.fallback
    assert all(p.explanation.kind == "personal" and p.explanation.summary and p.explanation.text for p in picks)
    assert {318, 296, 2571}.isdisjoint(p.movieId for p in picks)
    assert "predicted_rating" in printed and picks[0].title[:20] in printed


@pytest.mark.slow
def test_evaluate_run_scores_beside_the_baselines(quick_start_run: tuple[dict[str, object], str]) -> None:
    run = next(value for value in quick_start_run[0].values() if isinstance(value, movierec.Run))
    evaluation = movierec.evaluate_run(run)
    frame = evaluation.to_frame()
    assert {"hybrid", "biases", "popularity"} <= set(frame.index)
    assert evaluation.results["rmse"] == pytest.approx(run.metrics["rmse"])
