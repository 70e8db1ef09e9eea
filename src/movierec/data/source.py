"""Where a training run's ratings come from, and how they are split into train and test."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from movierec.checks import check_fields, one_of, valid, within
from movierec.data.loader import (
    DEFAULT_SCALE,
    CachedFile,
    align_movies,
    cached_ratings,
    load_dataset_with_report,
    resolve_source,
)
from movierec.data.movielens import (
    ParseOptions,
    ParseReport,
    count_rating_lines,
    read_movies_csv,
    read_ratings_csv,
)
from movierec.data.ratings import Dataset, Ratings, RatingScale, Vocabulary
from movierec.data.split import Split, global_temporal_split, random_split, user_temporal_split
from movierec.errors import MovieRecError

SPLITS = ("random", "user-temporal", "global-temporal")

ReportSink = Callable[[str, ParseReport], None]
"""Told, for each ratings source read, what parsing skipped or merged (the CLI prints it)."""


@dataclass(frozen=True)
class DataOptions:
    """``--data`` with a split, or explicit ``--train-file/--test-file``; and how much of the training side to use."""

    data: str = "ml-latest-small"
    """Release name or path to ratings (default: the embedded data)."""
    split: str = valid("random", one_of(SPLITS))
    """How to hold out test ratings: random, user-temporal, global-temporal."""
    test_fraction: float = valid(0.1, within(lambda share: 0 < share < 1, "a value in (0, 1)"))
    """Share of ratings held out for testing."""
    split_seed: int = 0
    """Seed of the random split (and of the --train-share subsample)."""
    train_file: str | None = None
    """CSV userId,movieId,rating[,timestamp] to train on."""
    test_file: str | None = None
    """CSV of held-out ratings (with --train-file)."""
    movies_file: str | None = None
    """movies CSV movieId,title,genres (with --train-file)."""
    train_share: float = valid(1.0, within(lambda share: 0 < share <= 1, "a value in (0, 1]"))
    """Share of the training split used to train, a seeded subsample (smaller shares are part of larger ones);
    the test split is unchanged."""

    def __post_init__(self) -> None:
        check_fields(self)
        if (self.train_file is None) != (self.test_file is None):
            raise MovieRecError("--train-file and --test-file go together; give both or neither.")

    def to_dict(self) -> dict[str, Any]:
        """The settings as a run folder records them; ``train_share`` only below 1, so runs and tuning studies
        on the whole training split read exactly as those written before it existed."""
        values = asdict(self)
        if self.train_share == 1:
            del values["train_share"]
        return values


def load_split(
    options: DataOptions, parse: ParseOptions | None = None, *, on_report: ReportSink | None = None
) -> tuple[Dataset, Split]:
    """The dataset and its train/test split, as the options say, the training side cut to ``train_share``."""
    dataset, split = _full_split(options, parse or ParseOptions(scale=DEFAULT_SCALE), on_report)
    return dataset, keep_share(split, options)


def count_ratings(options: DataOptions) -> int:
    """About how many ratings ``load_split(options)`` would read, counted before reading them: the lines of the
    ratings files (``--train-file`` and ``--test-file``, or ``--data``'s), so duplicates and invalid lines count."""
    if options.train_file is not None and options.test_file is not None:
        return sum(count_rating_lines(_csv_file(Path(name))) for name in (options.train_file, options.test_file))
    return count_rating_lines(resolve_source(options.data)[1])


def _csv_file(path: Path) -> Path:
    """``path``, a file; else one sentence saying what is there instead."""
    if path.is_dir():
        raise MovieRecError(f"{path} is a folder; expected a CSV file there.")
    if not path.is_file():
        raise MovieRecError(f"The file {path} does not exist.")
    return path


def keep_share(split: Split, options: DataOptions) -> Split:
    """``split`` with its training side cut to a seeded ``options.train_share`` of it; the test side as it was.

    The subsample is seeded by ``split_seed`` alone, so with one seed a smaller share is part of a larger one.
    """
    if options.train_share == 1:
        return split
    kept = random_split(split.train, 1 - options.train_share, seed=options.split_seed).train
    return Split(kept, split.test)


def _full_split(options: DataOptions, parse: ParseOptions, on_report: ReportSink | None) -> tuple[Dataset, Split]:
    if options.train_file is not None and options.test_file is not None:
        return _from_files(Path(options.train_file), Path(options.test_file), options.movies_file, parse, on_report)
    dataset, report = load_dataset_with_report(options.data, parse)
    if on_report is not None:
        on_report(options.data, report)
    return dataset, _split(dataset.ratings, options)


def split_ratings(ratings: Ratings, options: DataOptions) -> Split:
    """The split ``load_split`` makes of ``options.data``'s ``ratings``: the same rows on each side, in the same
    order (a run folder that keeps a reference to the cached ratings rebuilds its training side so)."""
    return keep_share(_split(ratings, options), options)


def cached_source(options: DataOptions, parse: ParseOptions | None = None) -> CachedFile | None:
    """The Parquet cache file ``load_split(options, parse)`` read the ratings from (or wrote them to), with the
    sha256 the cache records for it; None for ``--train-file`` data or when the cache does not hold them."""
    if options.train_file is not None:
        return None
    return cached_ratings(options.data, parse or ParseOptions(scale=DEFAULT_SCALE))


def _split(ratings: Ratings, options: DataOptions) -> Split:
    if options.split == "random":
        return random_split(ratings, options.test_fraction, seed=options.split_seed)
    if options.split == "user-temporal":
        return user_temporal_split(ratings, last_fraction=options.test_fraction)
    cut = int(np.quantile(ratings.timestamps, 1 - options.test_fraction))
    return global_temporal_split(ratings, cut)


def _from_files(
    train_path: Path, test_path: Path, movies_path: str | None, parse: ParseOptions, on_report: ReportSink | None
) -> tuple[Dataset, Split]:
    for path in (train_path, test_path, *([Path(movies_path)] if movies_path else [])):
        _csv_file(path)
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
