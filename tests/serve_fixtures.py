"""A tiny run folder with real MovieLens titles, built in milliseconds without training (shared by the
service tests)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from movierec.artifact.run import save_run
from movierec.config import TrainConfig
from movierec.data.movielens import read_movies_csv
from movierec.data.ratings import Ratings, Vocabulary
from movierec.data.synthetic import generate_low_rank
from movierec.models.factors import FactorModel, FactorParams
from movierec.paths import EMBEDDED_DIR

N_USERS, N_ITEMS, N_RATINGS, RANK = 300, 150, 12_000, 4


def build_run(run_dir: Path, seed: int = 0, model_name: str = "biased-mf") -> Path:
    """A biased-mf run over the first ``N_ITEMS`` embedded movies: the generator's true factors, exported as a
    model, with its ratings (clipped to 0.5-5) as the training data. Every movie has at least one rating."""
    truth = generate_low_rank(N_USERS, N_ITEMS, N_RATINGS, rank=RANK, noise_std=0.3, seed=seed)
    movies = read_movies_csv(EMBEDDED_DIR / "ml-latest-small" / "movies.csv").head(N_ITEMS).reset_index(drop=True)
    r = truth.ratings
    stars = np.clip(np.round(r.ratings * 2) / 2, 0.5, 5.0).astype(np.float32)
    train = Ratings(r.users, r.items, stars, r.timestamps, r.user_vocab, Vocabulary(movies["movieId"].to_numpy()))
    counts = np.bincount(train.items, minlength=N_ITEMS).astype(np.float32)
    params = FactorParams(
        global_mean=truth.global_mean,
        user_bias=truth.user_bias.astype(np.float32),
        item_bias=truth.item_bias.astype(np.float32),
        user_factors=truth.user_factors.astype(np.float32),
        item_factors=truth.item_factors.astype(np.float32),
        low=0.5,
        high=5.0,
        link="sigmoid" if model_name == "sigmoid-mf" else "linear",
        user_known=np.ones(N_USERS, bool),
        item_known=counts > 0,
        item_prior=counts / counts.max(),
        rank_weight=0.1,
        fold_in_reg=1.0,
    )
    save_run(
        run_dir,
        config=TrainConfig(model=model_name, dim=RANK, epochs=1),
        model=FactorModel(params, model_name),
        movies=movies,
        train=train,
        metrics={},
        history=[],
        data={"source": "serve-test"},
    )
    return run_dir
