"""``--solver gibbs``: the draws against their exact distributions, the chain's averaged predictor end to end
(train, save, load, serve the same RMSE), determinism, resume, and recovery of data drawn from the model."""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

from movierec.artifact.run import load_run
from movierec.config import TrainConfig
from movierec.data.ratings import Dataset, Ratings
from movierec.data.split import random_split
from movierec.errors import MovieRecError
from movierec.models import registry
from movierec.train import als
from movierec.train.driver import EpochStats, FitResult, fit, make_solver
from movierec.train.gibbs import GibbsSolver
from movierec.train.gibbs_draws import draw_noise_precision, draw_normal_gamma, draw_rows
from movierec.train.gibbs_features import Colour, colour_classes, colour_features, draw_features
from movierec.train.gibbs_samples import KeptSamples
from test_fast_hybrid import genre_dataset

from models_fixtures import low_rank_dataset, rmse, write_csv_files

GIBBS = {"solver": "gibbs", "dim": 3, "epochs": 12, "gibbs_burn_in": 4, "device": "cpu", "watch_dim": 0}


def test_a_row_draw_follows_its_exact_gaussian_conditional() -> None:
    rng = np.random.default_rng(0)
    design = rng.normal(size=(6, 3))
    gram, rhs = design.T @ design, design.T @ rng.normal(size=6)
    alpha, mean, precision = 2.0, np.array([0.3, -0.2, 0.1]), np.array([1.5, 0.5, 4.0])
    exact_precision = alpha * gram + np.diag(precision)
    exact_cov = np.linalg.inv(exact_precision)
    exact_mean = exact_cov @ (alpha * rhs + precision * mean)

    n = 40_000
    drawn = (
        draw_rows(
            torch.tensor(gram, dtype=torch.float32).expand(n, 3, 3),
            torch.tensor(rhs, dtype=torch.float32).expand(n, 3),
            alpha,
            torch.tensor(mean, dtype=torch.float32),
            torch.tensor(precision, dtype=torch.float32),
            torch.Generator().manual_seed(0),
        )
        .double()
        .numpy()
    )
    scale = np.sqrt(np.diag(exact_cov))
    np.testing.assert_allclose(drawn.mean(0), exact_mean, atol=4 * scale.max() / np.sqrt(n))
    np.testing.assert_allclose(np.cov(drawn.T), exact_cov, atol=0.03 * np.abs(exact_cov).max())


def test_row_systems_are_the_exact_normal_equations() -> None:
    rng = np.random.default_rng(1)
    n_users, n_items, dim = 5, 4, 2
    users = np.repeat(np.arange(n_users), 3).astype(np.int32)
    items = np.concatenate([rng.choice(n_items, 3, replace=False) for _ in range(n_users)]).astype(np.int32)
    values = rng.normal(size=users.size).astype(np.float32)
    side = als.build_side(users, items, values, n_users, n_items, torch.device("cpu"), block_ratings=6)
    other = als.Factors(torch.randn(n_items + 1, dim), torch.randn(n_items + 1))
    offset = als.Factors(torch.randn(n_users + 1, dim), torch.randn(n_users + 1))
    other.factors[-1], other.bias[-1] = 0.0, 0.0
    seen = 0
    for system in als.row_systems(side, other, offset):
        for row, gram, rhs in zip(system.block.rows.tolist(), system.gram, system.rhs, strict=True):
            mine = users == row
            design = np.c_[other.factors[items[mine]].numpy(), np.ones(mine.sum())]
            target = values[mine] - other.bias[items[mine]].numpy()
            target -= other.factors[items[mine]].numpy() @ offset.factors[row].numpy() + offset.bias[row].item()
            np.testing.assert_allclose(gram.numpy(), design.T @ design, rtol=1e-5, atol=1e-5)
            np.testing.assert_allclose(rhs.numpy(), design.T @ target, rtol=1e-4, atol=1e-5)
            seen += 1
    assert seen == n_users


def test_hyperparameter_draws_concentrate_on_the_truth() -> None:
    rng = np.random.default_rng(2)
    mu, lam = np.array([0.5, -1.0]), np.array([4.0, 0.25])
    rows = torch.from_numpy(rng.normal(mu, 1 / np.sqrt(lam), size=(20_000, 2)))
    draws = np.stack([draw_normal_gamma(rows, rng) for _ in range(200)])  # (200, 2, k)
    np.testing.assert_allclose(draws[:, 0].mean(0), mu, atol=0.02)
    np.testing.assert_allclose(draws[:, 1].mean(0), lam, rtol=0.03)
    assert (draws[:, 1].std(0) / lam).max() < 0.02  # 20,000 rows leave little doubt: about sqrt(2 / n)
    alphas = [draw_noise_precision(10_000 / 2.5, 10_000, rng) for _ in range(200)]
    assert np.mean(alphas) == pytest.approx(2.5, rel=0.02)
    empty = draw_normal_gamma(torch.zeros(0, 2), rng)  # no rows: the hyperprior itself
    assert empty.shape == (2, 2) and (empty[1] > 0).all()


def test_features_of_one_colour_share_no_movie() -> None:
    indptr = np.array([0, 3, 5, 6, 8])
    indices = np.array([0, 1, 2, 1, 3, 4, 0, 4])
    colours = colour_features(indptr, indices, 5)
    for start, end in itertools.pairwise(indptr):
        assert len(set(colours[indices[start:end]].tolist())) == end - start
    assert colours.max() + 1 == 3  # a movie carries three features: three colours suffice here


@dataclass(frozen=True)
class FeatureDrawCase:
    """A random feature draw: ``n_items`` movies carrying ``per_movie`` of ``n_features`` features each (CSR
    ``indptr``, ``indices``, ``weights``), each movie's ``G_i`` (``gram``, the padding row last at zero), the feature
    rows' ``prior`` (mean, precision) and the colours."""

    indptr: np.ndarray
    indices: np.ndarray
    weights: np.ndarray
    gram: torch.Tensor
    prior: tuple[torch.Tensor, torch.Tensor]
    classes: list[Colour]


def feature_draw_case(n_items: int, n_features: int, per_movie: int, length: int, k: int, seed: int) -> FeatureDrawCase:
    """``FeatureDrawCase`` with ``G_i`` from ``length`` random rows of ``k`` columns (torch's global generator)."""
    rng = np.random.default_rng(seed)
    indptr = np.arange(0, per_movie * n_items + 1, per_movie)
    indices = np.concatenate([rng.choice(n_features, per_movie, replace=False) for _ in range(n_items)])
    weights = rng.uniform(0.5, 1.0, indices.size).astype(np.float32)
    design = torch.randn(n_items + 1, length, k)
    gram = torch.bmm(design.transpose(1, 2), design)
    gram[-1] = 0
    prior = (torch.randn(n_features, k), torch.rand(n_features, k) + 0.5)
    classes = colour_classes(indptr, indices, weights, n_features, torch.device("cpu"))
    return FeatureDrawCase(indptr, indices, weights, gram, prior, classes)


def test_a_feature_draw_that_leaves_the_gradient_stale_draws_the_same_rows() -> None:
    n_items, n_features, k = 10, 6, 3
    case = feature_draw_case(n_items, n_features, per_movie=3, length=5, k=k, seed=2)
    gram, prior, classes = case.gram, case.prior, case.classes
    matrix = als.FeatureMatrix.from_csr(case.indptr, case.indices, case.weights, n_features, torch.device("cpu"))
    feature_gram = matrix.transposed_times(gram.view(-1, k * k), squared=True).view(-1, k, k)
    assert all(colour.updated < colour.movies.shape[0] for colour in classes[-1:])  # the last colour: none
    start, gradient = torch.randn(n_features, k), torch.randn(n_items + 1, k)
    gradient[-1] = 0
    drawn = []
    for stale in (False, True):
        table, moved = start.clone(), gradient.clone()
        draw_features(table, classes, gram, feature_gram, moved, 2.0, prior, torch.Generator().manual_seed(3), stale)
        drawn.append((table, moved))
    (table, moved), (stale_table, _) = drawn
    torch.testing.assert_close(stale_table, table)
    change = matrix.times(table - start)  # the whole gradient moved by -G_i F_i (drawn - start)
    torch.testing.assert_close(moved, gradient - torch.bmm(gram, change.unsqueeze(-1)).squeeze(-1))


def test_stored_samples_are_evenly_spaced_and_their_tables_average_the_predictions() -> None:
    samples = KeptSamples(2, 3, 2, n_valid=1, planned=6, stored=3)
    drawn = []
    for _ in range(6):
        users = als.Factors(torch.randn(3, 2), torch.randn(3))
        items = als.Factors(torch.randn(4, 2), torch.randn(4))
        drawn.append((users, items))
        samples.add(users, items, torch.zeros(1, dtype=torch.float64))
    tables = samples.tables()
    assert tables["user_factors"].shape == (2, 6) and samples.kept == 6
    stored = [drawn[i] for i in (1, 3, 5)]  # the last of each third
    expected = np.mean([(u.factors[:-1] @ i.factors[:-1].T).numpy() for u, i in stored], 0)
    np.testing.assert_allclose(tables["user_factors"] @ tables["item_factors"].T, expected, atol=1e-5)
    np.testing.assert_allclose(tables["item_bias"], np.mean([i.bias[:-1].numpy() for _, i in drawn], 0), atol=1e-6)


def test_a_fresh_chain_draws_its_first_priors_from_the_initial_rows() -> None:
    """As myFM does: small initial factors (``init_std``) and zero biases make tight first priors (a cold start)."""
    dataset, _ = low_rank_dataset()
    config = registry.config_for("biased-mf", **{**GIBBS, "epochs": 1, "gibbs_burn_in": 0, "init_std": 0.1})
    solver = make_solver(config, dataset, dataset.ratings, dataset.ratings, torch.device("cpu"), None)
    assert isinstance(solver, GibbsSolver)
    solver.start()
    solver.run_epoch(1)
    precision = solver.chain.hyper["user"][1]
    assert (precision[:-1] > 30).all() and precision[-1] > 50  # factors ~ N(0, 0.01), biases all zero


def test_a_chain_that_keeps_no_sample_is_refused() -> None:
    dataset, _ = low_rank_dataset()
    config = registry.config_for("biased-mf", **{**GIBBS, "epochs": 5, "gibbs_burn_in": 5})
    with pytest.raises(MovieRecError, match="--gibbs-burn-in 5 with --gibbs-thin 1 keeps no sample of --epochs 5"):
        fit(config, dataset, dataset.ratings, progress=False)


def test_two_runs_with_one_seed_draw_the_same_chain_and_another_seed_does_not() -> None:
    dataset, _ = low_rank_dataset()
    config = registry.config_for("biased-mf", **{**GIBBS, "epochs": 6, "gibbs_burn_in": 2})
    first, second = (fit(config, dataset, dataset.ratings, progress=False) for _ in range(2))
    other = fit(config.replace(seed=1), dataset, dataset.ratings, progress=False)
    np.testing.assert_array_equal(first.model.params.user_factors, second.model.params.user_factors)
    assert [h.val_rmse for h in first.history] == [h.val_rmse for h in second.history]
    assert [h.val_rmse for h in first.history] != [h.val_rmse for h in other.history]
    assert {h.reg for h in first.history} == {0.0}  # no ridge: the sampler draws its priors


def killed_and_resumed(config: TrainConfig, dataset: Dataset, train: Ratings, run_dir: Path) -> FitResult:
    """``fit`` into ``run_dir`` killed after epoch 6 (its checkpoint saved), then resumed there to the end."""

    def killed(stats: EpochStats) -> None:
        if stats.epoch == 6:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fit(config, dataset, train, run_dir=run_dir, progress=False, on_epoch=killed)
    return fit(config, dataset, train, run_dir=run_dir, resume=True, progress=False)


def assert_low_rank_chain_is_deterministic_and_recovers_the_model(overrides: dict[str, object]) -> None:
    """Biased MF sampled (``overrides``: the row draws' settings) from low-rank data twice with one seed: the same
    samples, and the posterior mean predicts the true ratings closely (for the large-data row draws, forced on)."""
    dataset, truth = low_rank_dataset(noise=0.3)
    config = registry.config_for("biased-mf", **{**overrides, "epochs": 60, "gibbs_burn_in": 20})
    first, second = (fit(config, dataset, dataset.ratings, progress=False) for _ in range(2))
    np.testing.assert_array_equal(first.model.params.user_factors, second.model.params.user_factors)
    assert [h.val_rmse for h in first.history] == [h.val_rmse for h in second.history]
    ratings = dataset.ratings
    assert rmse(first.model.predict(ratings.users, ratings.items), truth.predict(ratings.users, ratings.items)) < 0.25


def assert_low_rank_chain_resumes(overrides: dict[str, object], run_dir: Path) -> None:
    """Biased MF sampled from low-rank data, killed and resumed in ``run_dir``, draws what an unbroken chain does."""
    dataset, _ = low_rank_dataset()
    config = registry.config_for("biased-mf", **overrides)
    straight = fit(config, dataset, dataset.ratings, progress=False)
    resumed = killed_and_resumed(config, dataset, dataset.ratings, run_dir)
    assert [h.val_rmse for h in resumed.history] == [h.val_rmse for h in straight.history]
    np.testing.assert_array_equal(resumed.model.params.user_factors, straight.model.params.user_factors)


@pytest.mark.parametrize(("model", "implicit"), [("biased-mf", False), ("hybrid", False), ("hybrid", True)])
def test_resume_continues_the_chain(model: str, implicit: bool, tmp_path: Path) -> None:
    dataset = genre_dataset()
    train = random_split(dataset.ratings, 0.2, seed=0).train
    config = registry.config_for(model, **GIBBS, gibbs_stored=3, use_implicit=implicit)
    straight = fit(config, dataset, train, progress=False)
    resumed = killed_and_resumed(config, dataset, train, tmp_path)
    assert [h.val_rmse for h in resumed.history] == [h.val_rmse for h in straight.history]
    for name in ("user_factors", "item_factors", "user_bias", "item_bias", "implicit"):
        np.testing.assert_array_equal(getattr(resumed.model.params, name), getattr(straight.model.params, name))
    assert straight.model.params.dim == 3 * 3  # three stored samples side by side
    assert straight.model.params.implicit is None  # the flipped block lives in the movie rows (gibbs_implicit)


def test_a_gibbs_run_saves_loads_and_serves_the_rmse_it_reports(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from movierec.cli import main  # here, so the solver tests run where the CLI's extras are not installed

    dataset = genre_dataset()
    split = random_split(dataset.ratings, 0.2, seed=0)
    files = write_csv_files(dataset, split.train, split.test, tmp_path)
    out = tmp_path / "run"
    args = ["train", *files, "--model", "hybrid", "--solver", "gibbs", "--dim", "3", "--epochs", "20"]
    assert main([*args, "--gibbs-burn-in", "8", "--gibbs-stored", "4", "--out", str(out), "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    run = load_run(out)
    assert run.config.solver == "gibbs" and run.config.gibbs_stored == 4 and run.model.params.dim == 12
    test = split.test
    stars = np.round(test.ratings, 1)  # as the test file holds them
    assert rmse(run.model.predict(test.users, test.items), stars) == pytest.approx(metrics["rmse"], abs=1e-4)
    assert metrics["rmse"] < metrics["baselines"]["biases"]["rmse"]


@pytest.mark.slow
def test_the_average_recovers_data_drawn_from_the_model() -> None:
    dataset, truth = low_rank_dataset(noise=0.3)
    split = random_split(dataset.ratings, 0.1, seed=0)
    config = registry.config_for("biased-mf", **{**GIBBS, "dim": 3, "epochs": 150, "gibbs_burn_in": 50})
    model = fit(config, dataset, split.train, progress=False).model
    test = split.test
    predicted = model.predict(test.users, test.items)
    assert rmse(predicted, truth.predict(test.users, test.items)) < 0.25  # well inside the noise (0.3)
    assert rmse(predicted, test.ratings) < 1.2 * truth.ideal_rmse(test)  # 7,200 ratings for 300 rows


def test_the_registry_lists_gibbs_for_both_factor_models() -> None:
    assert set(registry.trained_by("gibbs")) == {"biased-mf", "hybrid"}
    for model in ("biased-mf", "hybrid"):
        config = registry.config_for(model, solver="gibbs")
        assert config.epochs > config.gibbs_burn_in
        assert config.use_implicit == (model == "hybrid")  # the hybrid's flipped block; biased-mf has none
    assert TrainConfig(solver="gibbs").gibbs_thin == 1


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_on_cuda_the_chain_lands_where_the_cpu_chain_does() -> None:
    dataset = genre_dataset()
    train = random_split(dataset.ratings, 0.2, seed=0).train
    config = registry.config_for("hybrid", **{**GIBBS, "epochs": 40, "gibbs_burn_in": 10})
    on_cpu = fit(config, dataset, train, progress=False)
    on_gpu = fit(config.replace(device="cuda"), dataset, train, progress=False)
    assert on_gpu.history[-1].val_rmse == pytest.approx(on_cpu.history[-1].val_rmse, rel=0.05)
