"""EASE, the top-N yardstick: the closed form on a hand-sized case, the catalog limit, and the kept last fit."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from movierec.data.ratings import Ratings
from movierec.errors import MovieRecError
from movierec.models import ease


def _ratings(pairs: list[tuple[int, int]]) -> Ratings:
    frame = pd.DataFrame(pairs, columns=["userId", "movieId"]).assign(rating=4.0)
    return Ratings.from_frame(frame)


def test_weights_solve_the_constrained_least_squares_problem() -> None:
    train = _ratings([(1, 10), (1, 20), (2, 10), (2, 30), (3, 20), (3, 30), (4, 10), (4, 20), (4, 30)])
    model = ease.fit_ease(train, lam=2.0)
    x = model.history.toarray().astype(np.float64)
    gram = x.T @ x + 2.0 * np.eye(3)
    # each column j: argmin |x_j - X b|^2 + 2 |b|^2 with b_j = 0, solved directly on the other columns
    for j in range(3):
        others = [i for i in range(3) if i != j]
        column = np.linalg.solve(gram[np.ix_(others, others)], (x.T @ x)[others, j])
        np.testing.assert_allclose(model.weights[others, j], column, rtol=1e-5)
        assert model.weights[j, j] == 0.0
    np.testing.assert_allclose(model.scores(np.array([0])), x[:1] @ model.weights, rtol=1e-6)
    np.testing.assert_allclose(model.scores_for(np.array([0, 1, 1])), model.weights[[0, 1]].sum(0), rtol=1e-6)


def test_the_last_fit_is_reused_only_for_the_same_split_and_penalty() -> None:
    train = _ratings([(1, 10), (1, 20), (2, 10), (2, 30)])
    first = ease.fit_ease(train, lam=1.0)
    assert ease.fit_ease(train, lam=1.0) is first
    assert ease.fit_ease(train, lam=2.0) is not first
    assert ease.fit_ease(_ratings([(1, 10), (1, 20), (2, 20), (2, 30)]), lam=1.0) is not first


def test_a_catalog_past_the_limit_or_a_bad_penalty_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    train = _ratings([(1, 10), (1, 20), (2, 30)])
    with pytest.raises(MovieRecError, match=r"penalty -1\.0 is not positive"):
        ease.fit_ease(train, lam=-1.0)
    monkeypatch.setattr(ease, "MAX_ITEMS", 2)
    with pytest.raises(MovieRecError, match="3 movies, more than the 2"):
        ease.fit_ease(train)


def test_a_duplicate_rating_counts_once_and_the_inverse_is_symmetric_past_one_block() -> None:
    pairs = [(user, movie) for user in range(40) for movie in range(30) if (user * 7 + movie * 3) % 5 < 2]
    train = _ratings([*pairs, pairs[0], pairs[1]])  # two pairs rated twice
    assert set(np.unique(ease.fit_ease(train, lam=3.0).history.data)) == {1.0}
    x = ease.fit_ease(_ratings(pairs), lam=3.0).history.toarray().astype(np.float64)
    inverse = np.linalg.inv(x.T @ x + 3.0 * np.eye(x.shape[1]))
    np.testing.assert_allclose(ease._mirror_lower(np.tril(inverse).copy(), block=7), inverse, rtol=1e-12)
