"""Ratings carry their sign: a 1★ pushes the movies watched alike down, a 5★ pulls them up, in every part of
the ranking score, for folded-in new users (and known users, whose watch vectors are solved the same way)."""

from __future__ import annotations

import numpy as np
import pytest

from movierec.models import registry
from movierec.models.factors import FactorModel
from movierec.models.watch import MEAN_PRIOR, Taste
from movierec.recommend import Recommender

ALIEN, COMEDIES = 1214, [2, 1, 2355, 1265, 344, 231]  # Jumanji, Toy Story, A Bug's Life, Groundhog Day, ...


def test_targets_mark_a_rating_well_below_the_persons_shrunk_mean_as_disliked() -> None:
    taste = Taste(global_mean=3.5, margin=1.0, dislike=-0.5)
    users = np.array([0, 0, 0, 1, 1])
    ratings = np.array([5.0, 5.0, 1.0, 3.0, 2.0])
    mean0 = (11.0 + MEAN_PRIOR * 3.5) / (3 + MEAN_PRIOR)  # 3.5625: 1★ is below mean0 - 1, 5★ is not
    mean1 = (5.0 + MEAN_PRIOR * 3.5) / (2 + MEAN_PRIOR)  # 3.21: 2★ is more than a star below, 3★ is not
    assert mean0 - 1 > 1.0 and mean1 - 1 > 2.0 and mean1 - 1 < 3.0
    np.testing.assert_array_equal(taste.targets(users, ratings, 2), [1.0, 1.0, -0.5, 1.0, -0.5])


def test_sign_blind_taste_gives_every_rating_the_same_target() -> None:
    targets = Taste(global_mean=3.5, margin=1.0, dislike=1.0).targets(np.zeros(3, int), np.array([1.0, 3, 5]), 1)
    np.testing.assert_array_equal(targets, [1.0, 1.0, 1.0])


@pytest.fixture(scope="module")
def real() -> Recommender:
    from movierec.data.loader import load_dataset
    from movierec.data.split import random_split
    from movierec.train.driver import fit

    dataset = load_dataset("ml-latest-small")
    train = random_split(dataset.ratings, 0.1, seed=0).train
    config = registry.config_for("biased-mf", solver="als", epochs=4, device="cpu")
    return Recommender(fit(config, dataset, train, progress=False).model, dataset.movies, train)


def _parts(rec: Recommender, ratings: list[tuple[int, float]], items: np.ndarray) -> dict[str, np.ndarray]:
    """The predicted rating, the "likely to watch" score (before their weights) and the whole rank score."""
    user = rec.fold_in(ratings).vector
    model: FactorModel = rec.model
    return {
        "rating": model.predict_for(user, items).astype(np.float64),
        "watch": model.watch_scores(user.watch, items).astype(np.float64),
        "rank score": model.rank_for(user)[items].astype(np.float64),
    }


@pytest.mark.slow
@pytest.mark.parametrize(("stars", "direction"), [(1.0, -1), (5.0, 1)])
def test_rating_a_movie_moves_its_nearest_neighbours_in_every_part(
    real: Recommender, stars: float, direction: int
) -> None:
    base = [(movie, 5.0) for movie in COMEDIES]
    neighbours = real.item_vocab.index(np.array([s.movieId for s in real.similar(ALIEN, n=10)]))
    before = _parts(real, base, neighbours)
    after = _parts(real, [*base, (ALIEN, stars)], neighbours)
    for part in ("rating", "watch", "rank score"):
        change = direction * (after[part] - before[part])
        # a predicted rating already at the top of the scale stays there (the link clips it): never the wrong way
        assert (change >= 0).all() and (change > 0).mean() >= 0.5, (part, change)
    assert (direction * (after["watch"] - before["watch"]) > 0).all()
