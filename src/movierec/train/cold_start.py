"""The cold-start protocol's training half: hold users out, train on the rest, then score them by fold-in
(``movierec.evaluate.coldstart.score_cold_start``)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from movierec.data.ratings import Dataset
from movierec.data.split import holdout_users
from movierec.evaluate.coldstart import BASELINE_USER_REG, ColdStartOptions, score_cold_start
from movierec.models.baselines import bias_params
from movierec.models.factors import FactorModel
from movierec.train.driver import fit


def cold_start(
    config: Any, dataset: Dataset, options: ColdStartOptions, progress: bool = False
) -> list[dict[str, Any]]:
    """Hold users out, train ``config`` on the rest, and score every ``k`` in ``options.given``."""
    split = holdout_users(dataset.ratings, fraction=options.holdout_fraction, seed=options.seed)
    model = fit(config, dataset, split.train, progress=progress).model
    baseline = FactorModel(
        replace(bias_params(split.train, dataset.scale), fold_in_reg=2 * BASELINE_USER_REG), "biases"
    )
    return score_cold_start(model, baseline, split.train, split.test, options)
