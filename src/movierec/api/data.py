"""``load_data``: a MovieLens release (or a folder or file of ratings) and its train/test split."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Literal

import pandas as pd

from movierec.api._settings import check_names
from movierec.data.ratings import Dataset
from movierec.data.source import DataOptions, load_split
from movierec.data.split import Split

Part = Literal["all", "train", "test"]
DATA_SETTINGS = tuple(f.name for f in fields(DataOptions) if f.name != "data")


@dataclass(frozen=True)
class Data:
    """Ratings, the movies table and the train/test split that ``fit`` trains and scores on."""

    name: str
    options: DataOptions
    dataset: Dataset = field(repr=False)
    split: Split = field(repr=False)

    @property
    def movies(self) -> pd.DataFrame:
        """movieId, title, year, genres ("A|B"), one row per movie."""
        return self.dataset.movies

    @property
    def scale(self) -> tuple[float, float]:
        """The lowest and highest star a rating can have."""
        return self.dataset.scale.low, self.dataset.scale.high

    def to_frame(self, part: Part = "all") -> pd.DataFrame:
        """The ratings (userId, movieId, rating, timestamp): all of them, or the training or test side."""
        if part not in ("all", "train", "test"):
            raise ValueError(f"part must be 'all', 'train' or 'test', not {part!r}")
        ratings = {"all": self.dataset.ratings, "train": self.split.train, "test": self.split.test}[part]
        return ratings.to_frame(raw_ids=True)

    def to_dict(self) -> dict[str, Any]:
        """Counts and settings: users, movies, ratings on each side, the star scale and the split."""
        low, high = self.scale
        return {
            "name": self.name,
            "n_users": self.dataset.ratings.n_users,
            "n_movies": self.dataset.ratings.n_items,
            "n_ratings": len(self.dataset.ratings),
            "n_train": len(self.split.train),
            "n_test": len(self.split.test),
            "scale": [low, high],
            **self.options.to_dict(),
        }


def load_data(source: str = "ml-latest-small", **settings: Any) -> Data:
    """Load a release by name (``"ml-latest-small"`` is embedded; others come from `movierec data fetch`), or a
    folder of MovieLens files, or a ratings CSV, and split it.

    ``settings`` are the data options of `movierec train`: ``split`` ("random", "user-temporal",
    "global-temporal"), ``test_fraction``, ``split_seed``, ``train_share``, ``train_file``/``test_file``/
    ``movies_file``. An unknown one is a ``MovieRecError`` naming it and the valid ones.
    """
    check_names(settings, DATA_SETTINGS, "load_data")
    options = DataOptions(data=str(source), **settings)
    dataset, split = load_split(options)
    return Data(dataset.name, options, dataset, split)
