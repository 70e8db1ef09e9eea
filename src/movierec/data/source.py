"""Where a training run's ratings come from, and how they are split into train and test."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from movierec.data.loader import DEFAULT_SCALE, align_movies, load_dataset_with_report
from movierec.data.movielens import ParseOptions, ParseReport, read_movies_csv, read_ratings_csv
from movierec.data.ratings import Dataset, Ratings, RatingScale, Vocabulary
from movierec.data.split import Split, global_temporal_split, random_split, user_temporal_split
from movierec.errors import MovieRecError

SPLITS = ("random", "user-temporal", "global-temporal")

ReportSink = Callable[[str, ParseReport], None]
"""Told, for each ratings source read, what parsing skipped or merged (the CLI prints it)."""


@dataclass(frozen=True)
class DataOptions:
    """``--data`` with a split, or explicit ``--train-file/--test-file``."""

    data: str = "ml-latest-small"
    split: str = "random"
    test_fraction: float = 0.1
    split_seed: int = 0
    train_file: str | None = None
    test_file: str | None = None
    movies_file: str | None = None

    def __post_init__(self) -> None:
        if self.split not in SPLITS:
            raise MovieRecError(f"--split {self.split!r} is not valid; choose one of: {', '.join(SPLITS)}.")
        if not 0 < self.test_fraction < 1:
            raise MovieRecError(f"--test-fraction {self.test_fraction} is out of range; use a value in (0, 1).")
        if (self.train_file is None) != (self.test_file is None):
            raise MovieRecError("--train-file and --test-file go together; give both or neither.")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def load_split(
    options: DataOptions, parse: ParseOptions | None = None, *, on_report: ReportSink | None = None
) -> tuple[Dataset, Split]:
    """The dataset and its train/test split, as the options say."""
    parse = parse or ParseOptions(scale=DEFAULT_SCALE)
    if options.train_file is not None and options.test_file is not None:
        return _from_files(Path(options.train_file), Path(options.test_file), options.movies_file, parse, on_report)
    dataset, report = load_dataset_with_report(options.data, parse)
    if on_report is not None:
        on_report(options.data, report)
    ratings = dataset.ratings
    if options.split == "random":
        split = random_split(ratings, options.test_fraction, seed=options.split_seed)
    elif options.split == "user-temporal":
        split = user_temporal_split(ratings, last_fraction=options.test_fraction)
    else:
        cut = int(np.quantile(ratings.timestamps, 1 - options.test_fraction))
        split = global_temporal_split(ratings, cut)
    return dataset, split


def _from_files(
    train_path: Path, test_path: Path, movies_path: str | None, parse: ParseOptions, on_report: ReportSink | None
) -> tuple[Dataset, Split]:
    for path in (train_path, test_path, *([Path(movies_path)] if movies_path else [])):
        if path.is_dir():
            raise MovieRecError(f"{path} is a folder; expected a CSV file there.")
        if not path.is_file():
            raise MovieRecError(f"The file {path} does not exist.")
    train_frame, train_report = read_ratings_csv(train_path, parse)
    test_frame, test_report = read_ratings_csv(test_path, parse)
    if on_report is not None:
        on_report(str(train_path), train_report)
        on_report(str(test_path), test_report)
    movies = read_movies_csv(Path(movies_path)) if movies_path else None
    movie_ids = movies["movieId"].to_numpy() if movies is not None else np.empty(0, np.int64)
    users = Vocabulary.from_ids(train_frame["userId"].to_numpy(), test_frame["userId"].to_numpy())
    items = Vocabulary.from_ids(train_frame["movieId"].to_numpy(), test_frame["movieId"].to_numpy(), movie_ids)
    train = Ratings.from_frame(train_frame, users, items)
    test = Ratings.from_frame(test_frame, users, items)
    dataset = Dataset(
        name=train_path.stem,
        ratings=train,
        movies=align_movies(movies, items),
        scale=RatingScale.infer(np.concatenate([train.ratings, test.ratings])),
        n_movies_listed=0 if movies is None else len(movies),
    )
    return dataset, Split(train, test)
