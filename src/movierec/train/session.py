"""One training session as `movierec train` runs it: load the split, fit, score beside the baselines, save.

``movierec train`` and ``movierec sweep`` (and the notebook) call ``train_run`` so every run folder is made
the same way.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from movierec.artifact.run import save_run, stream_train
from movierec.config import TrainConfig
from movierec.data.movielens import ParseOptions
from movierec.data.ratings import Dataset
from movierec.data.shard import ShardSet
from movierec.data.source import DataOptions, ReportSink, cached_source, load_split
from movierec.data.split import Split
from movierec.errors import MovieRecError
from movierec.evaluate.genres import movie_genres
from movierec.evaluate.report import compare_with_baselines
from movierec.train import checkpoint, distributed, shard_checkpoint
from movierec.train.driver import EpochCallback, fit, fit_sharded
from movierec.train.sharded_finish import sharded_metrics


def training_inputs(settings: TrainConfig, dataset: Dataset, parts: Split) -> tuple[Dataset, Split]:
    """What training and scoring read of the loaded data, no more, so the rest can go (0.9 GB at ML-25M size):
    the dataset with its training side as its ratings (the fit reads its movies, tags, scale and vocabularies,
    never the whole set), and without time effects (``use_time``) a training side without timestamps."""
    train = parts.train if settings.use_time else parts.train.without_timestamps()
    return replace(dataset, ratings=train), Split(train, parts.test)


def train_run(
    settings: TrainConfig,
    data_options: DataOptions,
    run_dir: Path,
    *,
    parse: ParseOptions | None = None,
    resume: bool = False,
    progress: bool = True,
    loaded: tuple[Dataset, Split] | None = None,
    on_epoch: EpochCallback | None = None,
    on_report: ReportSink | None = None,
    keep_checkpoint: bool = False,
    self_contained: bool = False,
) -> dict[str, Any]:
    """Train ``settings`` on the split ``data_options`` describe, write ``run_dir``; return the test metrics
    (with ``settings.distributed``, on rank 0; the other ranks help train and return an empty dict).

    ``loaded`` reuses a dataset and split already loaded with the same options (a sweep loads them once). With
    ``settings.shards`` the data come from that shard folder instead, and the run records the data settings the
    shards were cut with.
    ``on_report`` hears what parsing the ratings skipped or merged. Once the run folder is written the checkpoint
    is removed unless ``keep_checkpoint`` (a killed run keeps it, for ``resume``). A large training side loaded here
    from the Parquet cache is saved as a reference to it (``artifact.run.REFERENCE_MIN_RATINGS``) unless
    ``self_contained``; one ``loaded`` by the caller is copied (how it was parsed is not known here).
    """
    run_dir = Path(run_dir)
    main = not settings.distributed or distributed.setup(settings.device).is_main
    data_settings = data_options.to_dict()
    train_source = None
    if settings.shards is not None:  # each rank reads its parts; rank 0 gathers a summary to finish and score
        shards = ShardSet.open(Path(settings.shards))  # each rank checks --resume itself (shard_checkpoint)
        sharded = fit_sharded(settings, shards, run_dir=run_dir, resume=resume, progress=progress, on_epoch=on_epoch)
        if sharded is None:
            return {}
        result, summary = sharded
        movies, data_settings = shards.movies, shards.data
        genres = movie_genres(movies, summary.train.n_items)
        metrics = sharded_metrics(result.model, summary, shards.scale, genres)
        train = summary.train.take(np.zeros(0, np.int64))  # the rows are streamed in part by part once saved
    else:
        if resume and not (run_dir / checkpoint.CHECKPOINT_NAME).is_file():
            raise MovieRecError(f"--resume needs a checkpoint in {run_dir}, and there is none; drop --resume to start.")
        if not resume and main:
            (run_dir / checkpoint.CHECKPOINT_NAME).unlink(missing_ok=True)
        dataset, parts = loaded if loaded is not None else load_split(data_options, parse, on_report=on_report)
        if loaded is None and not self_contained:
            train_source = cached_source(data_options, parse)
        dataset, parts = training_inputs(settings, dataset, parts)
        result = fit(
            settings, dataset, parts.train, run_dir=run_dir, resume=resume, progress=progress, on_epoch=on_epoch
        )
        if not main:  # with --distributed, rank 0 alone evaluates and writes the run folder
            return {}
        movies, train = dataset.movies, parts.train
        genres = movie_genres(movies, train.n_items)
        metrics = compare_with_baselines(result.model, train, parts.test, dataset.scale, genres=genres)
    metrics.update(
        {
            "best_epoch": result.best_epoch,
            "best_val_rmse": result.best_val_rmse,
            "train_seconds": result.seconds,
        }
    )
    save_run(
        run_dir,
        config=settings,
        model=result.model,
        movies=movies,
        train=train,
        metrics=metrics,
        history=[h.to_row() for h in result.history],
        data=data_settings,
        train_source=train_source,
    )
    if settings.shards is not None:
        stream_train(run_dir, shards.each_part())
    if not keep_checkpoint:  # only once the run is saved: a process killed while saving can still --resume
        (run_dir / checkpoint.CHECKPOINT_NAME).unlink(missing_ok=True)
        if settings.shards is not None:
            shard_checkpoint.remove(run_dir)
    return metrics
