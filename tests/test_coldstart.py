"""The cold-start protocol: option parsing, which ratings are revealed, scoring on a known low-rank model, the
`movierec evaluate --protocol cold-start` command. The table on the real embedded data is printed by
benchmarks/coldstart_table.py (whether fold-in beats the baselines there depends on the model trained)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from movierec.cli import main
from movierec.data.ratings import Ratings, RatingScale, Vocabulary
from movierec.data.split import holdout_users
from movierec.data.synthetic import generate_low_rank
from movierec.errors import MovieRecError
from movierec.evaluate.coldstart import ColdStartOptions, parse_given, score_cold_start
from movierec.models.baselines import bias_params, popularity_prior
from movierec.models.factors import FactorModel, FactorParams, UserVector

from models_fixtures import train_small_run

KEYS = {"given", "rmse", "baseline_rmse", "ndcg@10", "popularity_ndcg@10", "recall@10", "n_users"}


def test_parse_given() -> None:
    assert parse_given("5,10,20") == (5, 10, 20)
    assert parse_given(" 20 , 5 ") == (20, 5)
    for bad in ("", "five", "0", "5,-1", "5;10", "2.5"):
        with pytest.raises(MovieRecError, match="--given"):
            parse_given(bad)


def test_options_are_validated_and_sorted() -> None:
    assert ColdStartOptions(given=(20, 5, 5)).given == (5, 20)
    with pytest.raises(MovieRecError, match="order"):
        ColdStartOptions(order="alphabetical")
    with pytest.raises(MovieRecError, match="hold-out fraction"):
        ColdStartOptions(holdout_fraction=1.0)
    with pytest.raises(MovieRecError, match="--given"):
        ColdStartOptions(given=(0,))


class SpyModel(FactorModel):
    """A bias-only model that records what each fold-in was given."""

    def __init__(self, params: FactorParams) -> None:
        super().__init__(params, "spy")
        self.folds: list[tuple[list[int], list[float]]] = []

    def fold_in(self, items: np.ndarray, ratings: np.ndarray) -> UserVector:
        self.folds.append((list(map(int, items)), list(map(float, ratings))))
        return super().fold_in(items, ratings)


def small_world() -> tuple[Ratings, Ratings, FactorParams]:
    """Three training users; held-out user 10 rated movies 0..5 at times 60, 50, ..., 10 (last movie first)."""
    train_rows = [(1, m, 4.0) for m in range(6)] + [(2, m, 3.0) for m in range(6)] + [(3, 0, 5.0)]
    held_rows = [(10, m, 5.0 - 0.5 * m, 60 - 10 * m) for m in range(6)] + [(11, 0, 4.0, 5)]
    users, items = Vocabulary(np.array([1, 2, 3, 10, 11])), Vocabulary(np.arange(6))
    train = Ratings.from_frame(pd.DataFrame(train_rows, columns=["userId", "movieId", "rating"]), users, items)
    held = Ratings.from_frame(
        pd.DataFrame(held_rows, columns=["userId", "movieId", "rating", "timestamp"]), users, items
    )
    return train, held, bias_params(train, RatingScale(0.5, 5.0, 0.5))


def test_the_first_k_ratings_by_time_are_revealed_and_the_rest_scored() -> None:
    train, held, params = small_world()
    spy = SpyModel(params)
    rows = score_cold_start(spy, FactorModel(params), train, held, ColdStartOptions(given=(2, 4)))
    # user 10's earliest ratings are movies 5, 4, ...; user 11 has one rating, too few for k = 4
    assert spy.folds == [([5, 4], [2.5, 3.0]), ([5, 4, 3, 2], [2.5, 3.0, 3.5, 4.0])]
    assert [r["given"] for r in rows] == [2, 4]
    assert [r["n_scored"] for r in rows] == [4, 2] and rows[0]["n_users"] == 1
    assert set(rows[0]) >= KEYS


def test_random_order_is_seeded() -> None:
    train, held, params = small_world()

    def revealed(seed: int) -> list[int]:
        spy = SpyModel(params)
        options = ColdStartOptions(given=(3,), order="random", seed=seed)
        score_cold_start(spy, FactorModel(params), train, held, options)
        return spy.folds[0][0]

    assert revealed(3) == revealed(3)
    assert len({tuple(revealed(seed)) for seed in range(8)}) > 1


def test_too_few_ratings_for_the_largest_k_is_an_error() -> None:
    train, held, params = small_world()
    with pytest.raises(MovieRecError, match="more than 6 ratings"):
        score_cold_start(FactorModel(params), FactorModel(params), train, held, ColdStartOptions(given=(6,)))


def test_the_true_low_rank_model_beats_biases_and_popularity() -> None:
    truth = generate_low_rank(400, 120, 24_000, rank=3, noise_std=0.3, seed=0, interaction_std=0.9)
    split = holdout_users(truth.ratings, fraction=0.2, seed=0)
    train = split.train
    scale = RatingScale(float(truth.ratings.ratings.min()), float(truth.ratings.ratings.max()), 0.5)
    exact = FactorModel(
        FactorParams(
            truth.global_mean,
            truth.user_bias.astype(np.float32),
            truth.item_bias.astype(np.float32),
            truth.user_factors.astype(np.float32),
            truth.item_factors.astype(np.float32),
            scale.low,
            scale.high,
            user_known=train.user_counts() > 0,
            item_known=train.item_counts() > 0,
            item_prior=popularity_prior(train),
            rank_weight=0.0,
            fold_in_reg=1.0,
        )
    )
    baseline = FactorModel(replace(bias_params(train, scale), fold_in_reg=10.0))
    rows = score_cold_start(exact, baseline, train, split.test, ColdStartOptions(given=(5, 10, 20)))
    assert [r["given"] for r in rows] == [5, 10, 20]
    for row in rows[1:]:
        assert row["rmse"] < row["baseline_rmse"]
        assert row["ndcg@10"] > row["popularity_ndcg@10"]
    assert rows[2]["rmse"] < rows[0]["rmse"]  # more ratings, a better fold-in


def test_cli_cold_start_protocol(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = train_small_run(tmp_path)
    capsys.readouterr()
    assert main(["evaluate", str(run), "--protocol", "cold-start", "--given", "5,10", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert [r["given"] for r in rows] == [5, 10]
    assert all(set(r) >= KEYS for r in rows)
    assert main(["evaluate", str(run), "--protocol", "cold-start", "--given", "5"]) == 0
    assert "biases RMSE" in capsys.readouterr().out
    assert main(["evaluate", str(run), "--protocol", "cold-start", "--given", "x"]) == 2
    assert "--given" in capsys.readouterr().err
