"""The model registry: a model a test registers trains, saves, loads, recommends and serves through the same
paths as the built-in ones, and no other file names it."""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from movierec.artifact.run import load_run
from movierec.cli import main
from movierec.config import TrainConfig
from movierec.data.ratings import Dataset, Ratings
from movierec.data.split import random_split
from movierec.errors import MovieRecError
from movierec.models import registry
from movierec.models.factors import FactorParams
from movierec.models.registry import ModelSpec, Param
from movierec.recommend.recommender import Recommender
from movierec.serve import create_app, load_settings
from movierec.train.driver import fit
from test_fast_hybrid import genre_dataset

from models_fixtures import low_rank_dataset, write_csv_files

with warnings.catch_warnings():  # starlette asks for httpx2, which is not a dependency here
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")
TOY = "toy-dot"


class DotProduct(nn.Module):
    """``mean + b_u + b_i + p_u . q_i`` from plain embedding tables: the least a solver trains."""

    def __init__(self, n_users: int, n_items: int, dim: int, low: float, high: float) -> None:
        super().__init__()
        self.users, self.items = nn.Embedding(n_users, dim + 1), nn.Embedding(n_items, dim + 1)
        for table in (self.users, self.items):
            nn.init.normal_(table.weight, std=0.05)
            nn.init.zeros_(table.weight[:, 0])  # column 0 holds the bias
        self.register_buffer("mean", torch.zeros(()))
        self.low, self.high = low, high

    mean: torch.Tensor

    def init_from_mean(self, mean: float) -> None:
        self.mean.fill_(mean)

    def forward(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        u, i = self.users(users), self.items(items)
        return self.mean + u[:, 0] + i[:, 0] + (u[:, 1:] * i[:, 1:]).sum(-1)

    def penalty(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        return self.users(users).pow(2).sum(-1) + self.items(items).pow(2).sum(-1)

    def export(self) -> FactorParams:
        u, i = (table.weight.detach().numpy().astype(np.float32) for table in (self.users, self.items))
        return FactorParams(
            global_mean=float(self.mean),
            user_bias=u[:, 0].copy(),
            item_bias=i[:, 0].copy(),
            user_factors=u[:, 1:].copy(),
            item_factors=i[:, 1:].copy(),
            low=self.low,
            high=self.high,
            link="linear",
        )


def build_dot_product(config: TrainConfig, data: Dataset, train: Ratings) -> nn.Module:
    return DotProduct(train.n_users, train.n_items, config.dim, data.scale.low, data.scale.high)


@pytest.fixture
def toy() -> Iterator[ModelSpec]:
    spec = registry.register(
        ModelSpec(
            TOY,
            "a test's own dot-product model",
            build=build_dot_product,
            defaults={"dim": 3, "epochs": 4, "lr": 0.02, "watch_dim": 2},
            search_space=(Param("dim", "int", 2, 4),),
        )
    )
    yield spec
    registry.unregister(TOY)


@pytest.fixture(scope="module")
def data_flags(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    dataset, _ = low_rank_dataset()
    r = dataset.ratings
    stars = np.clip(np.round(r.ratings * 2) / 2, 0.5, 5.0).astype(np.float32)
    split = random_split(Ratings(r.users, r.items, stars, r.timestamps, r.user_vocab, r.item_vocab), 0.1, seed=0)
    return write_csv_files(dataset, split.train, split.test, tmp_path_factory.mktemp("files"))


def test_a_registered_model_trains_loads_recommends_and_serves(
    toy: ModelSpec, data_flags: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert TOY in registry.names() and TOY in registry.trained_names() and TOY in registry.tunable_names()
    assert registry.config_for(TOY).dim == 3
    out = tmp_path / "run"
    assert main(["train", "--model", TOY, *data_flags, "--out", str(out), "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert metrics["model"] == TOY and metrics["rmse"] < metrics["baselines"]["global-mean"]["rmse"]

    run = load_run(out)
    assert run.config == registry.config_for(TOY) and run.model.name == TOY
    assert run.model.params.dim == 3 and run.model.params.watch_user.shape[1] == 2

    recommender = Recommender.from_run(run, min_ratings=1)
    user = int(run.train.user_vocab.raw(run.train.users[:1])[0])
    listed = recommender.recommend_user(user, n=5)
    rated = set(run.train.item_vocab.raw(run.train.items[run.train.users == run.train.users[0]]).tolist())
    assert len(listed) == 5 and not {r.movieId for r in listed} & rated

    with TestClient(create_app(load_settings(run_dir=out, min_ratings=1))) as client:
        health = client.get("/health").json()
        assert health["status"] == "ok" and health["model"] == TOY and health["dim"] == 3
        served = client.get(f"/users/{user}/recommendations", params={"n": 5})
        assert served.status_code == 200, served.text
        assert [r["movieId"] for r in served.json()["recommendations"]] == [r.movieId for r in listed]


def test_tune_searches_a_registered_models_space(
    toy: ModelSpec, data_flags: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["tune", "--model", TOY, *data_flags, "--trials", "2", "--seed", "0", "--out", str(tmp_path), "--json"]
    assert main(args) == 0, capsys.readouterr().err
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["model"] == TOY and set(summary["best_params"]) == {"dim"}
    assert 2 <= TrainConfig.from_file(Path(summary["config"])).dim <= 4


def test_an_unregistered_model_is_refused_again(capsys: pytest.CaptureFixture[str]) -> None:
    spec = registry.register(ModelSpec(TOY, "gone in a moment", build=build_dot_product))
    registry.unregister(spec.name)
    assert TOY not in registry.names()
    with pytest.raises(MovieRecError, match=f"--model '{TOY}' is not valid; choose one of: global-mean"):
        registry.config_for(TOY)
    assert main(["train", "--model", TOY, "--data", "/no/such/ratings"]) == 2  # refused before any data is read
    assert f"--model '{TOY}' is not valid" in capsys.readouterr().err


def test_a_taken_name_or_an_unknown_setting_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="already registered"):
        registry.register(ModelSpec("biased-mf", "again", build=build_dot_product))
    with pytest.raises(ValueError, match="unknown settings"):
        ModelSpec(TOY, "typo", build=build_dot_product, defaults={"dimm": 3})
    with pytest.raises(ValueError, match="exactly one"):
        ModelSpec(TOY, "neither", solvers=("loop",))


@pytest.mark.parametrize(
    ("model", "solver"), [(m, s) for m in registry.trained_names() for s in registry.get(m).solvers]
)
def test_every_solver_of_every_model_fits_a_scoring_model(model: str, solver: str) -> None:
    dataset = genre_dataset()
    quick = {"epochs": 3, "dim": 2, "watch_dim": 0, "device": "cpu", "gibbs_burn_in": 1}
    result = fit(registry.config_for(model, solver=solver, **quick), dataset, dataset.ratings, progress=False)
    predicted = result.model.predict(dataset.ratings.users[:50], dataset.ratings.items[:50])
    assert [h.epoch for h in result.history] == [1, 2, 3] or solver == "loop"  # the loop may stop early
    assert np.isfinite(predicted).all() and (predicted >= dataset.scale.low).all()
    assert (predicted <= dataset.scale.high).all() and result.model.name == model
