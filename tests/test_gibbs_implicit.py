"""The Gibbs hybrid's flipped implicit block (``gibbs_implicit``): the compiled coordinate draws against the block's
exact joint conditional, the movies' flipped parts following the table, and a chain with the block end to end (same
seed, same samples; saved, loaded, served, a new user folded in)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from movierec.artifact.run import load_run
from movierec.data.split import random_split
from movierec.models import registry
from movierec.train.als import Factors
from movierec.train.driver import fit
from movierec.train.gibbs_implicit import FlippedBlock, Relation
from movierec.train.gibbs_implicit_kernel import draw_block
from test_fast_hybrid import genre_dataset

from models_fixtures import rmse, write_csv_files

GIBBS = {"solver": "gibbs", "dim": 3, "epochs": 12, "gibbs_burn_in": 4, "device": "cpu", "watch_dim": 0}


def _design(hosts: np.ndarray, members: np.ndarray, other: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Dense ``H`` (ratings x members * k): rating ``r`` of host ``h`` against row ``members[r]`` of ``other`` gains
    ``scale[h] other[members[r], f]`` per unit of coordinate ``f`` of each member ``h`` holds."""
    n_members, k = other.shape
    design = np.zeros((hosts.size, n_members * k))
    for r, (host, row) in enumerate(zip(hosts, members, strict=True)):
        for member in members[hosts == host]:
            design[r, member * k : (member + 1) * k] = scale[host] * other[row]
    return design


def test_the_coordinate_draws_sample_the_blocks_exact_joint_conditional() -> None:
    rng = np.random.default_rng(0)
    n_hosts, n_members, k = 4, 5, 2
    pairs = np.array([(h, m) for h in range(n_hosts) for m in range(n_members) if rng.random() < 0.6 or m == 4 - h])
    hosts, members = pairs[:, 0], pairs[:, 1]
    relation = Relation.of(hosts, members, n_hosts, n_members, torch.device("cpu"))
    other = np.hstack([rng.normal(size=(n_members, k - 1)), np.ones((n_members, 1))])  # the bias column: ones
    design = _design(hosts, members, other, relation.host_scale)
    target, table = rng.normal(size=hosts.size), rng.normal(size=(n_members, k))
    residual = target - design @ table.ravel()
    alpha, mean, precision = 2.0, np.array([0.1, -0.2]), np.array([1.5, 0.7])
    exact_precision = alpha * design.T @ design + np.diag(np.tile(precision, n_members))
    exact_cov = np.linalg.inv(exact_precision)
    exact_mean = exact_cov @ (alpha * design.T @ target + np.tile(precision * mean, n_members))

    n = 20_000
    drawn = np.empty((n, n_members * k))
    for step in range(n):
        draw_block(
            table, other, relation.host_ptr, relation.host_ratings, relation.host_other, relation.member_ptr,
            relation.member_hosts, relation.host_scale, residual, alpha, mean, precision, rng.normal(size=table.shape),
        )  # fmt: skip
        drawn[step] = table.ravel()
    np.testing.assert_allclose(residual, target - design @ table.ravel(), atol=1e-10)  # kept up to date
    scale = np.sqrt(np.diag(exact_cov)).max()
    np.testing.assert_allclose(drawn.mean(0), exact_mean, atol=0.05 * scale)  # a chain: allow for its correlation
    np.testing.assert_allclose(np.cov(drawn.T), exact_cov, atol=0.05 * np.abs(exact_cov).max())


def test_the_flipped_parts_follow_the_table() -> None:
    train = random_split(genre_dataset().ratings, 0.2, seed=0).train
    n_users, n_items, k = train.n_users, train.n_items, 3
    table = torch.zeros(n_users, k)
    block = FlippedBlock(train, n_users, n_items, table)
    rng = np.random.default_rng(1)
    users = Factors(torch.tensor(rng.normal(size=(n_users + 1, k - 1)), dtype=torch.float32), torch.zeros(n_users + 1))
    users.factors[-1] = 0
    prior = torch.zeros(k), torch.ones(k)
    block.draw(users, torch.ones(len(train)), 1.0, prior, torch.Generator().manual_seed(0))

    raters = np.zeros((n_items, n_users))
    raters[train.items, train.users] = 1.0
    flipped = raters / np.sqrt(np.maximum(raters.sum(1, keepdims=True), 1)) @ table.double().numpy()
    np.testing.assert_allclose(block.part.factors[:-1].double().numpy(), flipped[:, :-1], atol=1e-5)
    np.testing.assert_allclose(block.part.bias[:-1].double().numpy(), flipped[:, -1], atol=1e-5)
    assert not block.part.factors[-1].any()  # the padding row
    rated = np.bincount(train.users, minlength=n_users) > 0
    assert table.abs().sum() > 0 and not table[torch.from_numpy(~rated)].any()  # users without ratings: no part


def test_one_seed_gives_one_chain_with_the_flipped_block() -> None:
    dataset = genre_dataset()
    train = random_split(dataset.ratings, 0.2, seed=0).train
    config = registry.config_for("hybrid", **GIBBS, use_implicit=True)
    runs = (config, config, config.replace(use_implicit=False))
    first, second, without = (fit(run, dataset, train, progress=False).model.params for run in runs)
    np.testing.assert_array_equal(first.item_factors, second.item_factors)
    np.testing.assert_array_equal(first.user_factors, second.user_factors)
    assert not np.array_equal(first.item_factors, without.item_factors)


def test_a_run_with_the_flipped_block_saves_loads_serves_and_folds_in(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from movierec.cli import main  # here, so the solver tests run where the CLI's extras are not installed

    dataset = genre_dataset()
    split = random_split(dataset.ratings, 0.2, seed=0)
    files = write_csv_files(dataset, split.train, split.test, tmp_path)
    out = tmp_path / "run"
    args = ["train", *files, "--model", "hybrid", "--solver", "gibbs", "--dim", "3", "--epochs", "20"]
    assert main([*args, "--gibbs-burn-in", "8", "--implicit", "--out", str(out), "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    run = load_run(out)
    assert run.config.use_implicit and run.model.params.implicit is None  # the flipped part lives in the movie rows
    test = split.test
    stars = np.round(test.ratings, 1)  # as the test file holds them
    assert rmse(run.model.predict(test.users, test.items), stars) == pytest.approx(metrics["rmse"], abs=1e-4)
    assert metrics["rmse"] < metrics["baselines"]["biases"]["rmse"]
    user = int(test.users[0])
    mine = split.train.users == user
    vector = run.model.fold_in(split.train.items[mine], split.train.ratings[mine])
    assert np.isfinite(vector.factors).all() and vector.factors.shape == (3,)
