"""The taste protocol on a loaded run: the model's lists come from the Recommender exactly as a new user of the
service gets them (fold-in, no retraining), beside EASE and popularity on the same users (``evaluate/taste.py``
builds the users and scores the lists)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from movierec.evaluate.taste import (
    LIST_LENGTH,
    Lister,
    Rated,
    Stars,
    build_users,
    ease_lister,
    popularity_lister,
    taste_report,
)
from movierec.models import ease
from movierec.recommend.recommender import Recommender

if TYPE_CHECKING:
    from movierec.artifact.run import Run


def run_taste(run: Run) -> dict[str, Any]:
    """The taste protocol's JSON-ready result for ``run``: its model, EASE (left out with a note on catalogs
    larger than ``ease.MAX_ITEMS``) and popularity."""
    recommender = Recommender.from_run(run)
    catalog, min_ratings = recommender.catalog, recommender.min_ratings
    users, left_out = build_users(catalog.counts, catalog.genre_matrix, catalog.genre_names, min_ratings)
    stars = Stars.for_scale(*recommender.scale)
    listers: dict[str, Lister] = {"model": model_lister(recommender)}
    notes = []
    if run.train.n_items > ease.MAX_ITEMS:
        notes.append(
            f"EASE is left out: the catalog has {run.train.n_items:,} movies, more than the {ease.MAX_ITEMS:,} "
            "it is fitted on."
        )
    else:
        listers["ease"] = ease_lister(ease.fit_ease(run.train), catalog.counts, min_ratings, stars)
    listers["popularity"] = popularity_lister(catalog.counts, min_ratings)
    report = taste_report(
        users,
        listers,
        genre_matrix=catalog.genre_matrix,
        genre_names=catalog.genre_names,
        movie_ids=catalog.movie_ids,
        stars=stars,
        min_ratings=min_ratings,
        left_out=left_out,
        notes=notes,
    )
    return {**report, "model_name": run.model.name, "run": str(run.path)}


def model_lister(recommender: Recommender) -> Lister:
    """The model's top list for a new user, through ``Recommender.recommend_new_user``."""

    def lister(rated: Rated) -> np.ndarray:
        movie_ids = recommender.catalog.movie_ids
        result = recommender.recommend_new_user([(int(movie_ids[i]), s) for i, s in rated], n=LIST_LENGTH)
        return recommender.item_vocab.index(np.array([r.movieId for r in result.recommendations], dtype=np.int64))

    return lister
