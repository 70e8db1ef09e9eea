"""Run folders that refer to their training ratings in the Parquet cache instead of copying them (issue 16), and the
memory the training session lets go of (the whole rating set, unused timestamps, Arrow's kept memory)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from movierec.artifact import run as artifact
from movierec.artifact.run import TRAIN_COPY, TRAIN_SOURCE, load_run, write_manifest
from movierec.cli import main
from movierec.config import TrainConfig
from movierec.data.loader import cached_ratings, load_dataset
from movierec.data.source import DataOptions, load_split, split_ratings
from movierec.data.synthetic import generate_ratings, write_ratings_csv
from movierec.errors import ArtifactError
from movierec.train.session import train_run, training_inputs

CONFIG = TrainConfig(model="biased-mf", solver="als", dim=4, epochs=2, watch_dim=0)


@pytest.fixture
def release(tmp_path: Path) -> Path:
    folder = tmp_path / "release"
    folder.mkdir()
    write_ratings_csv(generate_ratings(120, 50, 4_000, seed=3), folder / "ratings.csv")
    return folder


@pytest.fixture
def by_reference(monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs of any size refer to the cache (the default keeps a copy up to a million training ratings)."""
    monkeypatch.setattr(artifact, "REFERENCE_MIN_RATINGS", 0)


def listed(run_dir: Path) -> set[str]:
    return set(json.loads((run_dir / "manifest.json").read_text())["files"])


@pytest.mark.usefixtures("by_reference")
@pytest.mark.parametrize("options", [{}, {"split": "user-temporal", "train_share": 0.5, "split_seed": 2}])
def test_a_reference_rebuilds_the_copied_rows_and_the_same_metrics(
    release: Path, tmp_path: Path, options: dict[str, object]
) -> None:
    data = DataOptions(data=str(release), **options)  # type: ignore[arg-type]
    referring = train_run(CONFIG, data, tmp_path / "ref", progress=False)
    copying = train_run(CONFIG, data, tmp_path / "copy", progress=False, self_contained=True)
    assert {TRAIN_SOURCE} <= listed(tmp_path / "ref") and TRAIN_COPY not in listed(tmp_path / "ref")
    assert not (tmp_path / "ref" / TRAIN_COPY).exists()
    assert TRAIN_COPY in listed(tmp_path / "copy") and TRAIN_SOURCE not in listed(tmp_path / "copy")
    rebuilt, copied = load_run(tmp_path / "ref").train, load_run(tmp_path / "copy").train
    for column in ("users", "items", "ratings", "timestamps"):
        np.testing.assert_array_equal(getattr(rebuilt, column), getattr(copied, column))
    assert {**referring, "train_seconds": 0} == {**copying, "train_seconds": 0}
    source = json.loads((tmp_path / "ref" / TRAIN_SOURCE).read_text())
    cache = cached_ratings(str(release))
    assert cache is not None and source["ratings_file"] == str(cache.path) and source["sha256"] == cache.sha256
    assert source["rows"] == len(rebuilt)


def test_small_runs_keep_their_copy_by_default(release: Path, tmp_path: Path) -> None:
    train_run(CONFIG, DataOptions(data=str(release)), tmp_path / "run", progress=False)
    assert TRAIN_COPY in listed(tmp_path / "run") and not (tmp_path / "run" / TRAIN_SOURCE).exists()


@pytest.mark.usefixtures("by_reference")
def test_runs_from_train_files_or_loaded_data_keep_their_copy(release: Path, tmp_path: Path) -> None:
    ratings = load_dataset(release).ratings.to_frame()
    ratings.iloc[:3000].to_csv(tmp_path / "train.csv", index=False)
    ratings.iloc[3000:].to_csv(tmp_path / "test.csv", index=False)
    files = DataOptions(train_file=str(tmp_path / "train.csv"), test_file=str(tmp_path / "test.csv"))
    train_run(CONFIG, files, tmp_path / "files", progress=False)
    data = DataOptions(data=str(release))
    train_run(CONFIG, data, tmp_path / "loaded", progress=False, loaded=load_split(data))
    assert TRAIN_COPY in listed(tmp_path / "files") and TRAIN_COPY in listed(tmp_path / "loaded")


@pytest.mark.usefixtures("by_reference")
def test_a_missing_or_changed_cache_is_one_clear_error(release: Path, tmp_path: Path) -> None:
    train_run(CONFIG, DataOptions(data=str(release)), tmp_path / "run", progress=False)
    cache = cached_ratings(str(release))
    assert cache is not None
    kept = cache.path.read_bytes()
    cache.path.write_bytes(kept + b"\0")
    with pytest.raises(ArtifactError, match=r"checksum is no longer the one it recorded; retrain, or "):
        load_run(tmp_path / "run")
    cache.path.unlink()
    with pytest.raises(ArtifactError, match=r"which is gone; retrain, or train with --self-contained"):
        load_run(tmp_path / "run")
    cache.path.write_bytes(kept)
    assert len(load_run(tmp_path / "run").train) == 3_600


@pytest.mark.usefixtures("by_reference")
def test_rows_that_rebuild_differently_are_refused(release: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    train_run(CONFIG, DataOptions(data=str(release)), run_dir, progress=False)
    config = json.loads((run_dir / "config.json").read_text())
    config["data"]["split_seed"] = 7  # another split of the same cache file
    (run_dir / "config.json").write_text(json.dumps(config))
    write_manifest(run_dir)
    with pytest.raises(ArtifactError, match=r"differ from those the run .* was trained on; retrain"):
        load_run(run_dir)
    (run_dir / TRAIN_SOURCE).write_text("{}")
    write_manifest(run_dir)
    with pytest.raises(ArtifactError, match=r"is damaged: it lacks the cache file"):
        load_run(run_dir)


@pytest.mark.usefixtures("by_reference")
def test_training_again_into_a_folder_leaves_one_form_of_the_ratings(release: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    train_run(CONFIG, DataOptions(data=str(release)), run_dir, progress=False, self_contained=True)
    train_run(CONFIG, DataOptions(data=str(release)), run_dir, progress=False)
    assert TRAIN_SOURCE in listed(run_dir) and not (run_dir / TRAIN_COPY).exists()
    train_run(CONFIG, DataOptions(data=str(release)), run_dir, progress=False, self_contained=True)
    assert TRAIN_COPY in listed(run_dir) and not (run_dir / TRAIN_SOURCE).exists()


@pytest.mark.usefixtures("by_reference")
def test_a_copied_reference_run_loads_while_the_cache_is_there(release: Path, tmp_path: Path) -> None:
    train_run(CONFIG, DataOptions(data=str(release)), tmp_path / "run", progress=False)
    shutil.copytree(tmp_path / "run", tmp_path / "elsewhere")
    assert len(load_run(tmp_path / "elsewhere").train) == len(load_run(tmp_path / "run").train)


@pytest.mark.usefixtures("by_reference")
def test_cli_self_contained_flag(release: Path, tmp_path: Path) -> None:
    common = ["train", "--data", str(release), "--model", "biased-mf", "--solver", "als", "--epochs", "1"]
    common += ["--dim", "4", "--watch-dim", "0", "--json"]
    assert main([*common, "--out", str(tmp_path / "whole"), "--self-contained"]) == 0
    assert main([*common, "--out", str(tmp_path / "ref")]) == 0
    assert TRAIN_COPY in listed(tmp_path / "whole") and TRAIN_SOURCE in listed(tmp_path / "ref")


def test_split_ratings_is_load_splits_split(release: Path) -> None:
    options = DataOptions(data=str(release), split="global-temporal", train_share=0.7)
    _, parts = load_split(options)
    again = split_ratings(load_dataset(release).ratings, options)
    for mine, theirs in zip(parts, again, strict=True):
        np.testing.assert_array_equal(mine.users, theirs.users)
        np.testing.assert_array_equal(mine.ratings, theirs.ratings)


def test_loaded_ratings_own_their_memory(release: Path) -> None:
    for _ in range(2):  # parsed from the CSV, then read from the cache
        ratings = load_dataset(release).ratings
        assert all(column.base is None for column in (ratings.users, ratings.items, ratings.ratings))
        assert ratings.timestamps.base is None


def test_training_inputs_drop_the_whole_set_and_unused_timestamps(release: Path) -> None:
    dataset, parts = load_split(DataOptions(data=str(release)))
    lean, lean_parts = training_inputs(CONFIG, dataset, parts)
    assert lean.ratings is lean_parts.train and lean_parts.test is parts.test
    stamps = lean_parts.train.timestamps
    assert stamps.strides == (0,) and stamps.shape == (len(parts.train),) and not stamps.any()
    subset = lean_parts.train.take(np.arange(0, len(parts.train), 2))
    assert subset.timestamps.strides == (0,) and len(subset.timestamps) == len(subset)
    np.testing.assert_array_equal(subset.users, parts.train.users[::2])
    _, timed_parts = training_inputs(CONFIG.replace(solver="gibbs", use_time=True), dataset, parts)
    assert timed_parts.train.timestamps is parts.train.timestamps
