"""The held-out-movies protocol: how well does a model rate movies nobody rated in training?

Some movies are removed from the training ratings entirely (``holdout_items``), the run's configuration is
trained on the rest, and every held-out rating is predicted. A model that knows movies only from their
ratings can say nothing about these movies beyond the user's bias; the hybrid builds their vectors from
genres, release year and tags. Beside the model, on the same split:

- ``global-mean``: the mean training rating for everything;
- ``genre-average``: the mean training rating of the movie's genres (shrunk towards the global mean);
- ``biases+genre-average``: the user's bias plus the genre average of what is left.

``movierec evaluate RUN_DIR --protocol cold-items [--json]`` runs it on a run folder's own training split.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

from movierec.config import TrainConfig
from movierec.data.ratings import Dataset, Ratings, RatingScale
from movierec.data.source import DataOptions, load_split
from movierec.data.split import holdout_items
from movierec.errors import MovieRecError
from movierec.evaluate.protocol import evaluate_ratings
from movierec.models.baselines import bias_only_params, fit_biases, global_mean_params
from movierec.models.factors import FactorModel, FactorParams
from movierec.train.driver import fit

HELD_OUT_FRACTION = 0.1
GENRE_REG = 10.0  # pseudo-ratings at the global mean added to each genre's average
NO_GENRE = "(no genres listed)"


def evaluate_cold_items(
    config: TrainConfig,
    dataset: Dataset,
    train: Ratings,
    *,
    fraction: float = HELD_OUT_FRACTION,
    seed: int = 0,
) -> dict[str, Any]:
    """Hold out ``fraction`` of the rated movies of ``train``, fit ``config`` on the rest, and score the held-out
    movies' ratings beside the baselines. Returns one JSON-ready dict."""
    split = holdout_items(train, fraction=fraction, seed=seed)
    result = fit(config, dataset, split.train, progress=False)
    held = np.unique(split.test.items)
    genres = genre_lists(dataset.movies)
    rows = {
        config.model: _row(result.model, split.train, split.test),
        "global-mean": _row(
            FactorModel(global_mean_params(split.train, dataset.scale), "global-mean"), split.train, split.test
        ),
        "genre-average": _row(
            FactorModel(genre_average_params(split.train, genres, dataset.scale), "genre-average"),
            split.train,
            split.test,
        ),
        "biases+genre-average": _row(
            FactorModel(
                genre_average_params(split.train, genres, dataset.scale, user_bias=True), "biases+genre-average"
            ),
            split.train,
            split.test,
        ),
    }
    return {
        "protocol": "cold-items",
        "model": config.model,
        "held_out_fraction": fraction,
        "seed": seed,
        "n_movies_held_out": int(held.size),
        "n_held_out_with_genres": int(sum(bool(genres[i]) for i in held)),
        "n_train": len(split.train),
        "n_test": len(split.test),
        "train_seconds": result.seconds,
        "results": rows,
    }


def genre_lists(movies: pd.DataFrame) -> list[list[str]]:
    """Each movie's genres (item index order); ``(no genres listed)`` counts as none."""
    return [[g for g in str(text).split("|") if g and g != NO_GENRE] for text in movies["genres"].tolist()]


def genre_average_params(
    train: Ratings, genres: list[list[str]], scale: RatingScale, *, user_bias: bool = False, reg: float = GENRE_REG
) -> FactorParams:
    """A baseline in the one ``FactorParams`` shape: each movie's bias is the mean (shrunk) training rating of
    its genres, averaged over them; with ``user_bias`` the user biases come first and the genres average what
    they leave. Movies without genres fall back to the global mean."""
    if len(genres) != train.n_items:
        raise ValueError(f"got genres for {len(genres)} movies, the ratings have {train.n_items}")
    mean = float(train.ratings.mean())
    users_bias = np.zeros(train.n_users, np.float32)
    residual = train.ratings.astype(np.float64) - mean
    if user_bias:
        users_bias, _, _ = fit_biases(train)
        residual = residual - users_bias[train.users]
    names = sorted({g for movie in genres for g in movie})
    column = {name: i for i, name in enumerate(names)}
    counts = np.array([len(movie) for movie in genres], np.int64)
    rows = np.repeat(np.arange(train.n_items), counts)
    cols = np.array([column[g] for movie in genres for g in movie], np.int64)
    item_sum = np.bincount(train.items, residual, minlength=train.n_items)
    item_n = np.bincount(train.items, minlength=train.n_items)
    genre_sum = np.bincount(cols, item_sum[rows], minlength=len(names))
    genre_n = np.bincount(cols, item_n[rows], minlength=len(names))
    genre_mean = genre_sum / (genre_n + reg)
    item_bias = np.bincount(rows, genre_mean[cols], minlength=train.n_items) / np.maximum(counts, 1)
    return bias_only_params(train, scale, mean, users_bias, item_bias, item_known=counts > 0)


def cold_items_results(run: Any) -> dict[str, Any]:
    """The cold-items protocol on the run's own training split (``evaluate_cold_items``'s report); raises
    ``MovieRecError`` when the run's data has changed since it was trained."""
    dataset, parts = load_split(DataOptions(**run.data))
    if len(parts.train) != len(run.train) or parts.train.n_items != run.train.n_items:
        raise MovieRecError(
            f"The data the run in {run.path} was trained on has changed ({len(parts.train)} training ratings now, "
            f"{len(run.train)} in the run); evaluate a run trained on the current data."
        )
    return evaluate_cold_items(run.config, dataset, parts.train)


def cold_items_protocol(run: Any, as_json: bool, **_options: Any) -> None:
    """``movierec evaluate RUN_DIR --protocol cold-items``: the protocol on the run's own training split."""
    console = Console(highlight=False)
    if not as_json:
        console.print(f"Training {run.config.model} without {HELD_OUT_FRACTION:.0%} of the movies...")
    report = cold_items_results(run)
    if as_json:
        print(json.dumps(report, default=float))
        return
    table = Table(title="Held-out movies: ratings of movies with no training ratings")
    for column in ("model", "RMSE", "MAE"):
        table.add_column(column, justify="left" if column == "model" else "right")
    for name, row in report["results"].items():
        table.add_row(name, f"{row['rmse']:.4f}", f"{row['mae']:.4f}")
    console.print(table)
    console.print(
        f"{report['n_movies_held_out']:,} movies held out ({report['n_held_out_with_genres']:,} with genres), "
        f"{report['n_test']:,} of their ratings predicted; trained on {report['n_train']:,} ratings in "
        f"{report['train_seconds']:.1f} s."
    )


def _row(model: FactorModel, train: Ratings, test: Ratings) -> dict[str, float]:
    metrics = evaluate_ratings(model.predict, train, test)
    return {"rmse": metrics["rmse"], "mae": metrics["mae"]}
