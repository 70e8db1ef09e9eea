"""The fast training path for the hybrid (``--solver als --model hybrid``): the feature solver, the contract,
determinism, what the features buy over biased-mf, cold movies, and the combinations it refuses or ignores."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from movierec.config import TrainConfig
from movierec.data.loader import align_movies
from movierec.data.ratings import Dataset, Ratings, RatingScale, Vocabulary
from movierec.data.split import random_split, validation_split
from movierec.errors import MovieRecError
from movierec.models import registry
from movierec.models.factors import FactorModel
from movierec.train import als, als_solver
from movierec.train.als_solver import AlsSolver, AlsState
from movierec.train.driver import fit

from models_fixtures import check_resume_matches_a_straight_run, low_rank_dataset, rmse, write_csv_files

ALS = {"model": "hybrid", "solver": "als", "dim": 4, "reg": 0.3, "epochs": 20, "device": "cpu", "watch_dim": 0}
N_USERS, N_MOVIES, COLD = 120, 82, (80, 81)  # movies 80 (a comedy) and 81 (a horror film) are never rated


def genre_dataset(seed: int = 0) -> Dataset:
    """Users who like comedies and dislike horror films, or the other way round, rating 6 of 80 movies each:
    a movie has about 9 ratings, so its genres say more about it than its own few ratings do."""
    rng = np.random.default_rng(seed)
    quality = rng.normal(0, 0.3, N_MOVIES)
    rows = []
    for user in range(N_USERS):
        fan = user % 2  # 0: comedy fan, 1: horror fan
        for movie in rng.choice(N_MOVIES - len(COLD), size=6, replace=False):
            base = 4.2 if movie % 2 == fan else 1.8
            rating = np.clip(base + quality[movie] + rng.normal(0, 0.4), 0.5, 5.0)
            rows.append((user, int(movie), float(rating)))
    frame = pd.DataFrame(rows, columns=["userId", "movieId", "rating"])
    movie_ids = np.arange(N_MOVIES)
    items = Vocabulary.from_ids(frame["movieId"].to_numpy(), movie_ids)
    ratings = Ratings.from_frame(frame, Vocabulary.from_ids(frame["userId"].to_numpy()), items)
    movies = pd.DataFrame(
        {
            "movieId": movie_ids,
            "title": [f"M{m}" for m in movie_ids],
            "genres": ["Comedy|Romance" if m % 2 == 0 else "Horror|Thriller" for m in movie_ids],
            "year": pd.array([1980 + m % 30 for m in movie_ids], dtype="Int64"),
        }
    )
    return Dataset("genres", ratings, align_movies(movies, items), None, RatingScale(0.5, 5.0, 0.5))


@pytest.fixture(scope="module")
def data():
    dataset = genre_dataset()
    return dataset, random_split(dataset.ratings, 0.2, seed=0)


@pytest.fixture(scope="module")
def fitted(data):
    dataset, split = data
    return fit(TrainConfig(**ALS), dataset, split.train, progress=False)


# ------------------------------------------------------------------------------------------- the solver


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "torch"])
def test_feature_solve_matches_an_exact_ridge_solve(compiled: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """Enough CG steps on the feature rows reproduce the closed-form joint ridge solution (each step's products
    with the movies' Gram matrices by the compiled loop, and by the torch ops)."""
    monkeypatch.setattr(als, "COMPILED", compiled)
    rng = np.random.default_rng(0)
    n_users, n_items, n_features, dim = 9, 6, 4, 2
    users = np.repeat(np.arange(n_users), 3).astype(np.int32)
    items = np.concatenate([rng.choice(n_items, 3, replace=False) for _ in range(n_users)]).astype(np.int32)
    values = rng.normal(0, 1, users.size).astype(np.float32)
    cpu = torch.device("cpu")
    side = als.build_side(items, users, values, n_items, n_users, cpu, block_ratings=8)
    assert len(side.blocks) > 1
    dense = (rng.random((n_items, n_features)) < 0.6) * rng.uniform(0.2, 1.0, (n_items, n_features))
    dense[:, 0] = 1.0  # every movie has feature 0 (like a year bucket): the rows are coupled
    indptr = np.r_[0, np.cumsum((dense != 0).sum(1))]
    matrix = als.FeatureMatrix.from_csr(indptr, np.nonzero(dense)[1], dense[dense != 0], n_features, cpu)
    user_rows = als.Factors(torch.randn(n_users + 1, dim), torch.randn(n_users + 1))
    user_rows.factors[-1], user_rows.bias[-1] = 0.0, 0.0
    own = als.Factors(torch.randn(n_items + 1, dim), torch.randn(n_items + 1))
    own.factors[-1], own.bias[-1] = 0.0, 0.0
    table = torch.zeros(n_features, dim + 1)
    penalty = torch.from_numpy(rng.uniform(0.1, 1.0, (n_features, dim + 1)).astype(np.float32))
    for _ in range(3):  # restarted CG: float32 round-off leaves a little after n steps
        spread = matrix.times(table)  # the whole movie rows: own part plus the current feature part
        whole = als.Factors(own.factors + spread[:, :-1], own.bias + spread[:, -1])
        sums = als.movie_sums(side, user_rows, whole)
        als.solve_features(side, table, user_rows, matrix, penalty, n_features * (dim + 1), sums)
    # the same problem written out: unknowns vec(table), one equation per rating
    p = np.c_[user_rows.factors.numpy()[users], np.ones(users.size)].astype(np.float64)
    design = (dense[items][:, :, None] * p[:, None, :]).reshape(users.size, -1)
    q, b = own.factors.numpy()[items], own.bias.numpy()[items]
    target = values - user_rows.bias.numpy()[users] - (q * p[:, :dim]).sum(1) - b
    normal = design.T @ design + np.diag(penalty.numpy().reshape(-1).astype(np.float64))
    exact = np.linalg.solve(normal, design.T @ target).reshape(n_features, dim + 1)
    np.testing.assert_allclose(table.numpy(), exact, rtol=1e-3, atol=1e-4)


def test_the_compiled_gram_products_are_the_torch_ops(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each movie's ``[X, 1]'[X, 1] v`` by the compiled loop equals the torch ops' to float32 rounding, on one
    worker thread and on three (short and long rows; the movie nobody rated gets zeros)."""
    rng = np.random.default_rng(6)
    n_users, n_items, dim = 80, 20, 5
    users = rng.integers(0, n_users, 3_000).astype(np.int32)
    items = (rng.pareto(1.0, 3_000) * 2).astype(np.int64).clip(0, n_items - 2).astype(np.int32)
    values = rng.normal(0, 1, 3_000).astype(np.float32)
    side = als.build_side(items, users, values, n_items, n_users, torch.device("cpu"), block_ratings=256)
    assert len(side.blocks) > 2
    user_rows = als.Factors(torch.randn(n_users + 1, dim), torch.randn(n_users + 1))
    user_rows.factors[-1], user_rows.bias[-1] = 0.0, 0.0
    direction = torch.randn(n_items + 1, dim + 1)
    threads = torch.get_num_threads()
    products = {}
    for compiled, count in ((False, 1), (True, 1), (True, 3)):
        monkeypatch.setattr(als, "COMPILED", compiled)
        torch.set_num_threads(count)
        products[compiled, count] = als._gram_times(side, user_rows, direction)
    torch.set_num_threads(threads)
    torch.testing.assert_close(products[True, 1], products[False, 1], rtol=1e-4, atol=1e-3)
    assert torch.equal(products[True, 1], products[True, 3])
    assert float(products[True, 1][n_items - 1].abs().sum()) == 0.0 and float(products[True, 1].abs().sum()) > 0


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "torch"])
def test_the_movie_solve_leaves_the_sums_the_feature_solve_needs(
    compiled: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``solve_side(..., sums=)`` records, per movie, the same sums a fresh pass over the updated rows gives."""
    monkeypatch.setattr(als, "COMPILED", compiled)
    rng = np.random.default_rng(2)
    n_users, n_items, dim = 12, 7, 3
    users = np.repeat(np.arange(n_users), 4).astype(np.int32)
    items = np.concatenate([rng.choice(n_items - 1, 4, replace=False) for _ in range(n_users)]).astype(np.int32)
    values = rng.normal(0, 1, users.size).astype(np.float32)
    side = als.build_side(items, users, values, n_items, n_users, torch.device("cpu"), block_ratings=8)
    user_rows = als.Factors(torch.randn(n_users + 1, dim), torch.randn(n_users + 1))
    user_rows.factors[-1], user_rows.bias[-1] = 0.0, 0.0
    own = als.Factors(torch.zeros(n_items + 1, dim), torch.zeros(n_items + 1))
    offset = als.Factors(torch.randn(n_items + 1, dim), torch.randn(n_items + 1))
    offset.factors[-1], offset.bias[-1] = 0.0, 0.0
    counts = torch.from_numpy(np.bincount(users, minlength=n_users).astype(np.float32))
    sums = als.RowSums.zeros(n_items, dim, torch.device("cpu"))
    scale = als.mean_square(user_rows.factors, counts)
    als.solve_side(side, own, user_rows, scale, 0.1, 0.1, 3, offset, (1.0, 5.0), sums)
    fresh = als.movie_sums(side, user_rows, als.Factors(own.factors + offset.factors, own.bias + offset.bias))
    torch.testing.assert_close(sums.gradient, fresh.gradient, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(sums.squares, fresh.squares)
    assert float(sums.squares[n_items - 1].abs().sum()) == 0.0  # the movie nobody rated has no sums


def test_penalty_means_what_it_means_to_the_loop(data) -> None:
    """The ALS state's penalty is the module's own per-touched-row penalty, averaged over the ratings."""
    dataset, split = data
    config = TrainConfig(**ALS)
    train = validation_split(split.train, config.val_fraction, seed=0).train
    module = registry.get(config.model).build(AlsSolver.module_config(config), dataset, train)
    module.init_from_mean(float(train.ratings.mean()))
    state = AlsState(module, train, torch.device("cpu"), config.reg)
    state.sweep()
    state.sweep()
    state.to_module()
    assert float(module.feature_factors.weight.detach().abs().sum()) > 0  # the feature rows were learned
    users, items = (torch.from_numpy(a.astype(np.int64)) for a in (train.users, train.items))
    with torch.no_grad():
        expected = float(module.penalty(users, items).mean())
        predicted = module(users, items)
    assert state.mean_penalty() == pytest.approx(expected, rel=1e-4)
    # and the rows the users are solved against are the module's own predictions
    stated = als.predict(state.users, state.items, state.mean, users, items)
    torch.testing.assert_close(stated, predicted, atol=1e-5, rtol=1e-5)


# ----------------------------------------------------------------------------------------- fitted models


def test_contract(data, fitted) -> None:
    dataset, split = data
    model = fitted.model
    users, items = split.test.users, split.test.items
    predicted = model.predict(users, items)
    assert predicted.shape == (len(split.test),) and predicted.dtype == np.float32
    assert (predicted >= dataset.scale.low).all() and (predicted <= dataset.scale.high).all()
    scores = model.score_items(users[:5])
    np.testing.assert_allclose(scores[np.arange(5), items[:5]], predicted[:5], rtol=1e-5, atol=1e-5)
    assert model.name == "hybrid" and model.params.implicit is None  # no SVD++ term under ALS
    assert model.params.item_known.all()  # every movie has genres, rated or not
    vector = model.fold_in(items[:6], split.test.ratings[:6])
    assert np.isfinite(model.score_for(vector)).all()
    # history rows as the loop writes them; the best epoch is the one exported
    assert fitted.history[0].val_rmse > fitted.best_val_rmse
    assert fitted.best_val_rmse == min(h.val_rmse for h in fitted.history)
    assert all(math.isfinite(v) for v in fitted.history[-1].to_row().values())
    valid = validation_split(split.train, 0.05, seed=0).test
    assert rmse(model.predict(valid.users, valid.items), valid.ratings) == pytest.approx(fitted.best_val_rmse, rel=1e-4)


def test_deterministic_for_a_seed(data, fitted) -> None:
    dataset, split = data
    config = TrainConfig(**ALS)
    again = fit(config, dataset, split.train, progress=False)
    other = fit(config.replace(seed=1), dataset, split.train, progress=False)
    np.testing.assert_array_equal(again.model.params.item_factors, fitted.model.params.item_factors)
    assert [h.val_rmse for h in again.history] == [h.val_rmse for h in fitted.history]
    assert not np.array_equal(other.model.params.item_factors, fitted.model.params.item_factors)


def test_beats_biased_mf_when_ratings_follow_genres(data, fitted) -> None:
    dataset, split = data
    plain = fit(TrainConfig(**{**ALS, "model": "biased-mf"}), dataset, split.train, progress=False).model
    users, items, truth = split.test.users, split.test.items, split.test.ratings
    hybrid_rmse = rmse(fitted.model.predict(users, items), truth)
    assert hybrid_rmse < 0.85 * rmse(plain.predict(users, items), truth)
    assert hybrid_rmse < 0.6  # the noise is 0.4, movie quality 0.3 on top of a 2.4-star genre gap


def test_cold_movies_are_scored_from_their_genres(data, fitted) -> None:
    dataset, split = data
    comedy, horror = dataset.item_vocab.index(np.array(COLD))
    assert split.train.item_counts()[[comedy, horror]].sum() == 0
    model = fitted.model
    for fans, sign in ((np.arange(0, N_USERS, 2), 1.0), (np.arange(1, N_USERS, 2), -1.0)):
        rows = dataset.user_vocab.index(fans)
        gap = model.predict(rows, np.full(rows.size, comedy)) - model.predict(rows, np.full(rows.size, horror))
        assert (sign * gap > 0.7).all()  # the genres alone put a cold comedy above a cold horror film


def test_implicit_is_ignored_under_als(data, fitted) -> None:
    """The documented rule: ALS trains the hybrid without the SVD++ term whatever use_implicit says."""
    dataset, split = data
    assert TrainConfig(**ALS).use_implicit  # the default asks for it
    without = fit(TrainConfig(**ALS, use_implicit=False), dataset, split.train, progress=False)
    np.testing.assert_array_equal(without.model.params.user_factors, fitted.model.params.user_factors)
    assert AlsSolver.module_config(TrainConfig(**ALS)).use_implicit is False
    assert AlsSolver.module_config(TrainConfig(**{**ALS, "model": "biased-mf"})) == TrainConfig(
        **{**ALS, "model": "biased-mf"}
    )


def test_resume_continues_from_the_checkpoint(data, tmp_path: Path) -> None:
    dataset, split = data
    check_resume_matches_a_straight_run(
        fit, TrainConfig(**{**ALS, "epochs": 4, "patience": 10}), dataset, split.train, tmp_path, 1e-5
    )


def test_without_features_it_still_trains(data) -> None:
    """No movies file, no tags: the hybrid has no feature rows, and ALS fits the rest."""
    dataset, split = data
    config = TrainConfig(**ALS, use_genres=False)
    model = fit(config, dataset, split.train, progress=False).model
    comedy, horror = dataset.item_vocab.index(np.array(COLD))
    assert not model.params.item_known[[comedy, horror]].any()
    assert rmse(model.predict(split.test.users, split.test.items), split.test.ratings) < 1.2


def test_unsupported_combinations_are_refused_in_one_sentence() -> None:
    with pytest.raises(MovieRecError, match=r"^--solver als trains biased-mf and hybrid, not 'sigmoid-mf'; use"):
        registry.check(TrainConfig(solver="als", model="sigmoid-mf"))
    with pytest.raises(MovieRecError, match="--distributed trains with --solver loop"):
        TrainConfig(solver="als", model="hybrid", distributed=True)
    TrainConfig(solver="als", model="hybrid")  # accepted


def test_train_cli_hybrid_with_solver_als(data, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from movierec.cli import main  # here, so the solver tests run where the CLI's extras are not installed

    dataset, split = data
    out = tmp_path / "run"
    files = write_csv_files(dataset, split.train, split.test, tmp_path)
    args = ["train", *files, "--model", "hybrid", "--solver", "als", "--dim", "4", "--reg", "0.3", "--epochs", "8"]
    assert main([*args, "--out", str(out), "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    saved = json.loads((out / "config.json").read_text())
    assert saved.get("train", saved)["solver"] == "als" and metrics["model"] == "hybrid"
    assert metrics["rmse"] < 0.6
    assert main([*args, "--model", "sigmoid-mf", "--out", str(tmp_path / "bad")]) == 2


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_on_cuda_matches_the_cpu(data, fitted) -> None:
    dataset, split = data
    config = TrainConfig(**ALS)
    on_gpu = fit(config.replace(device="cuda"), dataset, split.train, progress=False)
    for cpu_stats, gpu_stats in zip(fitted.history[:3], on_gpu.history[:3], strict=False):
        assert gpu_stats.val_rmse == pytest.approx(cpu_stats.val_rmse, rel=1e-3)
    users, items = split.test.users, split.test.items
    np.testing.assert_allclose(on_gpu.model.predict(users, items), fitted.model.predict(users, items), atol=1e-2)
    assert isinstance(on_gpu.model, FactorModel)


def test_the_ridge_path_steps_after_each_epoch_that_gains_too_little() -> None:
    """``path_reg``: the first share until an epoch fails to gain PATH_TOLERANCE on the one before, then the
    next, and ``reg`` itself from the last step on."""
    assert als_solver.HYBRID_REG_PATH == (0.25, 0.5, 1.0)
    gain, small_gain = 0.9 * (1 - 2 * als_solver.PATH_TOLERANCE), 0.9 * (1 - 0.5 * als_solver.PATH_TOLERANCE)
    assert als_solver.path_reg(0.4, []) == pytest.approx(0.1)
    assert als_solver.path_reg(0.4, [0.9]) == pytest.approx(0.1)
    assert als_solver.path_reg(0.4, [0.9, gain]) == pytest.approx(0.1)
    assert als_solver.path_reg(0.4, [0.9, small_gain]) == pytest.approx(0.2)
    assert als_solver.path_reg(0.4, [0.9, 0.95, gain * 0.9]) == pytest.approx(0.2)
    assert als_solver.path_reg(0.4, [0.9, 0.95, 0.96]) == pytest.approx(0.4)
    assert als_solver.path_reg(0.4, [0.9, 0.95, 0.96, 0.97, 0.98]) == pytest.approx(0.4)


def test_the_ridge_path_finds_the_weaker_ridge_that_low_noise_ratings_carry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Dense rank-3 ratings with little noise: the path's best validation RMSE beats ``reg`` alone's, from an epoch
    of its first step; biased-mf keeps its one ridge."""
    dataset, _ = low_rank_dataset(noise=0.1)
    config = TrainConfig(**{**ALS, "epochs": 30})
    on_path = fit(config, dataset, dataset.ratings, progress=False)
    validation = [h.val_rmse for h in on_path.history]
    assert [h.reg for h in on_path.history] == [
        als_solver.path_reg(0.3, validation[:i]) for i in range(len(validation))
    ]
    assert on_path.history[on_path.best_epoch - 1].reg < 0.3  # the best epoch ran a weaker ridge
    assert on_path.history[-1].reg == pytest.approx(0.3)
    monkeypatch.setattr(als_solver.path_reg, "__defaults__", ((1.0,),))
    plain = fit(config, dataset, dataset.ratings, progress=False)
    assert on_path.best_val_rmse < 0.8 * plain.best_val_rmse


def test_a_resumed_run_walks_the_ridge_path_from_its_history(
    data, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dataset, split = data
    config = TrainConfig(**{**ALS, "epochs": 3, "patience": 10})
    fit(config.replace(epochs=2), dataset, split.train, run_dir=tmp_path, progress=False)
    seen: list[list[float]] = []
    walk = als_solver.path_reg
    monkeypatch.setattr(als_solver, "path_reg", lambda reg, history: seen.append(list(history)) or walk(reg, history))
    resumed = fit(config, dataset, split.train, run_dir=tmp_path, resume=True, progress=False)
    assert seen == [[h.val_rmse for h in resumed.history[:2]]]
