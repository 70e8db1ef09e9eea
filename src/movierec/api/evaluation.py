"""``evaluate_run``: score a trained run by one of the protocols of `movierec evaluate --protocol`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from movierec.api.runs import Run
from movierec.artifact.run import Run as RunFolder
from movierec.artifact.run import load_run
from movierec.data.source import DataOptions, load_split
from movierec.errors import MovieRecError

PROTOCOLS = ("standard", "cold-start", "cold-items", "taste")
"""standard: the run's own held-out ratings, beside the baselines; cold-start: users held out of training, folded
in from k of their ratings; cold-items: movies held out of training; taste: do genre fans get their genre?"""


@dataclass(frozen=True)
class Evaluation:
    """What a protocol measured: ``results`` is the JSON `movierec evaluate --protocol NAME --json` prints."""

    protocol: str
    run: Path
    results: Any

    def to_dict(self) -> dict[str, Any]:
        return {"protocol": self.protocol, "run": str(self.run), "results": self.results}

    def to_frame(self) -> pd.DataFrame:
        """standard and cold-items: one row per model; cold-start: one row per k; taste: one row per genre."""
        if self.protocol == "cold-start":
            return pd.DataFrame(self.results).set_index("given")
        if self.protocol == "taste":
            return pd.json_normalize(self.results["genres"]).set_index("genre")
        if self.protocol == "cold-items":
            return pd.DataFrame.from_dict(self.results["results"], orient="index").rename_axis("model")
        model = {key: value for key, value in self.results.items() if key != "baselines"}
        rows = [model, *self.results.get("baselines", {}).values()]
        return pd.DataFrame(rows).set_index("model")


def evaluate_run(
    run: Run | str | Path, protocol: str = "standard", *, given: tuple[int, ...] = (5, 10, 20)
) -> Evaluation:
    """Score ``run`` (a ``Run`` or a run folder) by ``protocol`` (one of ``PROTOCOLS``). cold-start and cold-items
    retrain the run's settings without the held-out users or movies; ``given`` is cold-start's k values."""
    if protocol not in PROTOCOLS:
        raise MovieRecError(f"The protocol {protocol!r} is not known; valid protocols are: {', '.join(PROTOCOLS)}.")
    loaded = load_run(run.path if isinstance(run, Run) else Path(run))
    return Evaluation(protocol, loaded.path, _RUNNERS[protocol](loaded, given))


def _standard(run: RunFolder, _given: tuple[int, ...]) -> dict[str, Any]:
    from movierec.data.ratings import RatingScale
    from movierec.evaluate.genres import movie_genres
    from movierec.evaluate.report import compare_with_baselines

    _, parts = load_split(DataOptions(**run.data))
    scale = RatingScale(run.model.params.low, run.model.params.high, 0.5)
    return compare_with_baselines(
        run.model, run.train, parts.test, scale, genres=movie_genres(run.movies, run.train.n_items)
    )


def _cold_start(run: RunFolder, given: tuple[int, ...]) -> list[dict[str, Any]]:
    from movierec.evaluate.coldstart import ColdStartOptions
    from movierec.train.cold_start import cold_start

    dataset, _ = load_split(DataOptions(**run.data))
    return cold_start(run.config, dataset, ColdStartOptions(given=tuple(given)))


def _cold_items(run: RunFolder, _given: tuple[int, ...]) -> dict[str, Any]:
    from movierec.train.cold_items import cold_items_results

    return cold_items_results(run)


def _taste(run: RunFolder, _given: tuple[int, ...]) -> dict[str, Any]:
    from movierec.recommend.taste import run_taste

    return run_taste(run)


_RUNNERS = {"standard": _standard, "cold-start": _cold_start, "cold-items": _cold_items, "taste": _taste}
