"""The adaptive interview (recommend/interview.py) and the interview protocol (recommend/interview_protocol.py):
a known user is recovered faster than by random questions, "not seen" changes the next question, nothing is asked
twice, and `movierec evaluate --protocol interview` answers in the documented form. The protocol's figures on the
embedded data are printed by benchmarks/interview.py."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from movierec.cli import main
from movierec.data.ratings import Ratings, Vocabulary
from movierec.data.synthetic import generate_low_rank
from movierec.errors import MovieRecError
from movierec.models.factors import FactorModel, FactorParams
from movierec.models.watch import Taste, fold_in_watch, watch_gram
from movierec.recommend.catalog import Catalog
from movierec.recommend.interview import Answer, Interviewer, next_questions
from movierec.recommend.interview_protocol import STRATEGIES, InterviewOptions, Setting, score_interviews

from models_fixtures import train_small_run

KEYS = {"strategy", "questions", "answered", "rmse", "ndcg@10", "recall@10"}
N_USERS = 20


def world(
    item_factors: np.ndarray, counts: np.ndarray, watch_item: np.ndarray | None = None, watch_mean: float = 0.0
) -> tuple[FactorModel, Catalog]:
    """A model over the given movie factors, and a catalog where movie i has ``counts[i]`` of the
    ``N_USERS`` training users' ratings. With ``watch_item``, a "likely to watch" part whose trained users all
    have the vector ``watch_mean`` in every coordinate."""
    n_items, dim = item_factors.shape
    rows = [(user, item, 3.0) for item in range(n_items) for user in range(int(counts[item]))]
    frame = pd.DataFrame(rows, columns=["userId", "movieId", "rating"])
    train = Ratings.from_frame(frame, Vocabulary(np.arange(N_USERS)), Vocabulary(np.arange(n_items)))
    movies = pd.DataFrame(
        {"movieId": np.arange(n_items), "title": [f"Movie {i}" for i in range(n_items)], "year": None, "genres": ""}
    )
    watch = {}
    if watch_item is not None:
        watch = {
            "watch_item": watch_item.astype(np.float32),
            "watch_user": np.full((N_USERS, watch_item.shape[1]), watch_mean, np.float32),
            "watch_reg": 0.1,
            "watch_unobserved": 0.1,
        }
    params = FactorParams(
        global_mean=3.0,
        user_bias=np.zeros(N_USERS, np.float32),
        item_bias=np.zeros(n_items, np.float32),
        user_factors=np.zeros((N_USERS, dim), np.float32),
        item_factors=item_factors.astype(np.float32),
        low=-20.0,
        high=20.0,
        user_known=np.ones(N_USERS, bool),
        item_known=np.ones(n_items, bool),
        fold_in_reg=0.01,
        **watch,  # type: ignore[arg-type]
    )
    return FactorModel(params), Catalog(movies, train)


def test_a_known_user_is_recovered_faster_than_by_random_questions() -> None:
    # six telling movies (a large factor along one axis, either sign) among 54 that say little
    rng = np.random.default_rng(0)
    telling = np.vstack([2.0 * np.eye(3), -2.0 * np.eye(3)])
    factors = np.vstack([rng.normal(0.0, 0.05, (54, 3)), telling])  # last, so no tie-break finds them first
    model, catalog = world(factors, np.full(60, N_USERS))  # everyone has seen everything
    truth = np.array([0.3, 1.0, -1.0, 0.5])  # bias, then factors

    def errors(strategy: str, seed: int, questions: int = 6) -> list[float]:
        interviewer = Interviewer(model, catalog, np.ones(60, bool))
        setting = Setting(interviewer, np.arange(60), np.arange(60))
        answers: list[Answer] = []
        out = []
        for _ in range(questions):
            item = STRATEGIES[strategy](setting, answers, np.random.default_rng(seed))
            assert item is not None
            answers.append((item, 3.0 + truth[0] + float(factors[item] @ truth[1:])))
            user = interviewer.fold_in(answers)
            out.append(float(np.linalg.norm(np.r_[user.bias, user.factors] - truth)))
        return out

    adaptive = np.array(errors("adaptive", 0))
    random = np.mean([errors("random", seed) for seed in range(20)], axis=0)
    assert adaptive[-1] < 0.05  # four unknowns: exact once the telling movies are asked
    assert adaptive.sum() < 0.5 * random.sum()
    assert (adaptive[3:] < random[3:]).all()


def watch_world() -> tuple[FactorModel, Catalog, np.ndarray]:
    """Bias-only ratings; movies 0-9 are watched alike (watch vector e1) and a little more often than movies
    10-19 (e2), so the interview starts with the first group."""
    watch = np.zeros((20, 2))
    watch[:10, 0] = watch[10:, 1] = 1.0
    model, catalog = world(np.zeros((20, 0)), np.r_[np.full(10, 11), np.full(10, 10)], watch, watch_mean=3.0)
    return model, catalog, np.ones(20, bool)


def test_not_seen_changes_the_next_question() -> None:
    model, catalog, candidates = watch_world()
    interviewer = Interviewer(model, catalog, candidates)
    first = interviewer.next_questions([], 1)[0]
    assert first < 10
    without_first = candidates.copy()
    without_first[first] = False
    # merely leaving the first movie out, the next question comes from the same group ...
    assert next_questions(model, catalog, [], 1, without_first)[0] < 10
    # ... but "I haven't seen it" makes the movies watched alike less likely seen: ask about the other group
    assert interviewer.next_questions([(first, None)], 1)[0] >= 10
    seen = interviewer.seen_probability([(first, None)])
    assert seen[1] < interviewer.seen_probability([])[1]
    assert interviewer.seen_probability([(first, 4.0)])[1] > interviewer.seen_probability([])[1]
    assert interviewer.fold_in([(first, None)]).watch is not None


def test_nothing_answered_is_asked_again() -> None:
    model, catalog, candidates = watch_world()
    interviewer = Interviewer(model, catalog, candidates)
    rng = np.random.default_rng(1)
    answers: list[Answer] = []
    while True:
        picks = interviewer.next_questions(answers, 3)
        assert len(picks) == len(set(picks)) == min(3, 20 - len(answers))
        assert not {item for item, _ in answers} & set(picks)
        if not picks:
            break
        answers.append((picks[0], None if rng.random() < 0.5 else float(rng.integers(1, 6))))
    assert sorted(item for item, _ in answers) == list(range(20))


def test_every_strategy_asks_only_askable_movies_once() -> None:
    truth = generate_low_rank(120, 40, 3_000, rank=2, noise_std=0.3, seed=2)
    held = truth.ratings.take(truth.ratings.users >= 100)
    train = truth.ratings.take(truth.ratings.users < 100)
    catalog_movies = pd.DataFrame(
        {"movieId": train.item_vocab.ids, "title": [f"M{i}" for i in range(40)], "year": None, "genres": ""}
    )
    params = FactorParams(
        truth.global_mean,
        truth.user_bias.astype(np.float32),
        truth.item_bias.astype(np.float32),
        truth.user_factors.astype(np.float32),
        truth.item_factors.astype(np.float32),
        0.5,
        5.0,
        user_known=train.user_counts() > 0,
        item_known=train.item_counts() > 0,
    )
    report = score_interviews(
        FactorModel(params), Catalog(catalog_movies, train), train, held, InterviewOptions(questions=(3, 6))
    )
    assert [(r["questions"], r["strategy"]) for r in report.rows] == [
        (k, name) for k in (3, 6) for name in ("popular", "fixed", "random", "adaptive")
    ]
    assert report.n_users == 20
    for row in report.rows:
        assert set(row) == KEYS
        assert 0 <= row["answered"] <= row["questions"]
    # with the true model, more answers fit better
    by = {(r["strategy"], r["questions"]): r for r in report.rows}
    assert by["adaptive", 6]["rmse"] < by["adaptive", 3]["rmse"]


def test_options_are_validated() -> None:
    assert InterviewOptions(questions=(10, 5, 5)).questions == (5, 10)
    with pytest.raises(MovieRecError, match="--questions"):
        InterviewOptions(questions=(0,))


@pytest.mark.slow
def test_cli_interview_protocol(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = train_small_run(tmp_path)
    capsys.readouterr()
    assert main(["evaluate", str(run), "--protocol", "interview", "--questions", "2,4", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert [(r["questions"], r["strategy"]) for r in rows] == [
        (k, name) for k in (2, 4) for name in ("popular", "fixed", "random", "adaptive")
    ]
    assert all(set(r) == KEYS for r in rows)
    assert main(["evaluate", str(run), "--protocol", "interview", "--questions", "3"]) == 0
    assert "adaptive" in capsys.readouterr().out
    assert main(["evaluate", str(run), "--protocol", "interview", "--questions", "x"]) == 2
    assert "--questions" in capsys.readouterr().err
    assert main(["evaluate", str(run), "--protocol", "interview", "--given", "5"]) == 2
    assert "--given does not apply to --protocol interview" in capsys.readouterr().err


def test_the_watch_fold_in_pulls_towards_the_mean_and_counts_not_seen_as_zero() -> None:
    rng = np.random.default_rng(3)
    movies = rng.normal(size=(40, 5)).astype(np.float32)
    gram = watch_gram(movies)
    taste = Taste(3.5, 1.0, -0.5)
    none = np.empty(0, np.int64)
    mean = rng.normal(size=5)
    assert not fold_in_watch(movies, none, np.empty(0), taste, 2.0, 1.0, gram).any()  # no answer, no mean: zero
    start = fold_in_watch(movies, none, np.empty(0), taste, 2.0, 1.0, gram, mean=mean)
    np.testing.assert_allclose(start, np.linalg.solve(gram + 2.0 * np.eye(5), 2.0 * mean), rtol=1e-5)
    unseen = np.array([7])
    light = fold_in_watch(movies, none, np.empty(0), taste, 2.0, 1.0, gram, mean=mean, unseen=unseen)
    heavy = fold_in_watch(movies, none, np.empty(0), taste, 2.0, 1.0, gram, mean=mean, unseen=unseen, unseen_weight=9)
    scores = [abs(float(movies[7] @ vector)) for vector in (start, light, heavy)]
    assert scores[0] > scores[1] > scores[2]  # "not seen" pulls that movie's score towards zero, more with weight
