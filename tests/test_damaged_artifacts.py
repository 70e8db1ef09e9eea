"""Damaged artifacts are refused with an ArtifactError naming the file, never a crash inside torch/safetensors/pyarrow.

Run folders (weights, metrics, Parquet tables, manifest), training checkpoints, and the Parquet data cache (which
is rebuilt silently instead).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.numpy import save_file

from movierec import paths
from movierec.artifact.run import load_params, load_run, save_run, write_manifest
from movierec.cli import main
from movierec.config import TrainConfig
from movierec.data.loader import align_movies, load_dataset
from movierec.data.ratings import Dataset, RatingScale
from movierec.data.split import random_split
from movierec.data.synthetic import generate_low_rank
from movierec.errors import ArtifactError, MovieRecError
from movierec.train import checkpoint
from movierec.train.driver import fit

from conftest import write
from models_fixtures import low_rank_dataset

CONFIG = TrainConfig(model="biased-mf", dim=4, epochs=2, batch_size=512, patience=10, device="cpu")


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A complete run folder with its checkpoint, never modified: tests damage copies of it."""
    dataset, _ = low_rank_dataset()
    split = random_split(dataset.ratings, 0.1, seed=0)
    run = tmp_path_factory.mktemp("pristine") / "run"
    result = fit(CONFIG, dataset, split.train, run_dir=run, progress=False)
    save_run(
        run, config=CONFIG, model=result.model, movies=dataset.movies, train=split.train,
        metrics={"rmse": 1.0}, history=[h.to_row() for h in result.history], data={},
    )  # fmt: skip
    assert (run / checkpoint.CHECKPOINT_NAME).is_file()
    return run


@pytest.fixture
def run(pristine: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(pristine, copy)
    return copy


def truncate(path: Path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def flip(path: Path, at: float = 0.6) -> None:
    data = bytearray(path.read_bytes())
    i = int(len(data) * at)
    data[i] ^= 0xFF
    path.write_bytes(bytes(data))


def refused(load: object, *names: str) -> str:
    """The ArtifactError message of ``load()``, which must name every one of ``names``."""
    with pytest.raises(ArtifactError) as error:
        load()  # type: ignore[operator]
    message = str(error.value)
    for name in names:
        assert name in message, f"{name!r} not in {message!r}"
    assert "\n" not in message.strip()
    return message


# ------------------------------------------------------------------------------------------------ run folders

RUN_FILES = [
    "model.safetensors",
    "metrics.json",
    "config.json",
    "history.csv",
    "movies.parquet",
    "train.parquet",
    "vocab/users.parquet",
    "vocab/items.parquet",
    "plots/learning_curve.png",
]


@pytest.mark.parametrize("name", RUN_FILES)
@pytest.mark.parametrize(
    "damage", [truncate, flip, lambda p: p.write_bytes(b"")], ids=["truncated", "flipped", "emptied"]
)
def test_a_damaged_run_file_is_refused_by_name(run: Path, name: str, damage: object) -> None:
    damage(run / name)  # type: ignore[operator]
    refused(lambda: load_run(run), str(run / name))


@pytest.mark.parametrize("name", RUN_FILES)
def test_a_missing_run_file_is_refused_by_name(run: Path, name: str) -> None:
    (run / name).unlink()
    refused(lambda: load_run(run), str(run / name), "missing")


@pytest.mark.parametrize(
    ("manifest", "fragment"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "expected a JSON object"),
        ('{"format": 99, "files": {}}', "format 99"),
        ('{"format": "1", "files": {}}', "format '1'"),
    ],
)
def test_a_damaged_or_foreign_manifest_is_refused(run: Path, manifest: str, fragment: str) -> None:
    (run / "manifest.json").write_text(manifest)
    refused(lambda: load_run(run), str(run), fragment)


@pytest.mark.parametrize("name", ["../outside.txt", "/etc/hostname", "vocab/../../outside.txt", ""])
def test_a_manifest_naming_files_outside_the_run_is_refused(run: Path, name: str) -> None:
    """A crafted manifest cannot make a loader (the CLI, or the service's reload) read files elsewhere."""
    (run.parent / "outside.txt").write_text("secret")
    manifest = json.loads((run / "manifest.json").read_text())
    manifest["files"][name] = "0" * 64
    (run / "manifest.json").write_text(json.dumps(manifest))
    refused(lambda: load_run(run), str(run / "manifest.json"), repr(name), "outside the run folder")


def test_no_manifest_means_an_incomplete_run(run: Path) -> None:
    (run / "manifest.json").unlink()
    refused(lambda: load_run(run), str(run), "no manifest.json")


def test_the_cli_refuses_a_damaged_run_with_exit_2(run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    flip(run / "train.parquet")
    assert main(["evaluate", str(run)]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert str(run / "train.parquet") in err and "Traceback" not in err


# files the manifest vouches for, but written by something else: the readers themselves must refuse them
CORRUPTIONS = st.sampled_from(["truncate", "flip", "garbage", "empty"])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.sampled_from([*RUN_FILES, "manifest.json"]), how=CORRUPTIONS, at=st.floats(0.0, 1.0), data=st.binary())
def test_readers_refuse_damage_the_manifest_does_not_catch(
    pristine: Path, tmp_path: Path, name: str, how: str, at: float, data: bytes
) -> None:
    folder = tmp_path / f"run-{np.random.default_rng().integers(1 << 62)}"
    shutil.copytree(pristine, folder)
    target = folder / name
    if how == "truncate":
        truncate(target, at)
    elif how == "flip" and target.stat().st_size:
        flip(target, min(at, 0.999))
    elif how == "garbage":
        target.write_bytes(data)
    else:
        target.write_bytes(b"")
    if name != "manifest.json":
        write_manifest(folder)  # the checksums now agree with the damaged file
    try:
        load_run(folder)
    except MovieRecError as error:
        assert str(error).strip()
    finally:
        shutil.rmtree(folder)


# ---------------------------------------------------------------------------------------------- weights file


def test_weights_of_an_unknown_format_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "model.safetensors"
    save_file({"user_bias": np.zeros(3, np.float32)}, str(path), metadata={"format": "7", "model": "biased-mf"})
    refused(lambda: load_params(path), str(path), "format '7'")


def test_weights_lacking_entries_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "model.safetensors"
    save_file({"user_bias": np.zeros(3, np.float32)}, str(path), metadata={"format": "1", "model": "biased-mf"})
    refused(lambda: load_params(path), str(path), "lacks the entry")


@pytest.mark.parametrize("content", [b"", b"\x00" * 8, b"\xff" * 64, b"not safetensors at all", b"PK\x03\x04zip"])
def test_weights_that_are_not_safetensors_are_refused(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "model.safetensors"
    path.write_bytes(content)
    refused(lambda: load_params(path), str(path))


# ------------------------------------------------------------------------------------------------ checkpoints


def resume(run: Path, config: TrainConfig = CONFIG) -> None:
    dataset, _ = low_rank_dataset()
    split = random_split(dataset.ratings, 0.1, seed=0)
    fit(config.replace(epochs=3), dataset, split.train, run_dir=run, resume=True, progress=False)


@pytest.mark.parametrize(
    "damage", [truncate, flip, lambda p: p.write_bytes(b"")], ids=["truncated", "flipped", "emptied"]
)
def test_a_damaged_checkpoint_is_refused(run: Path, damage: object) -> None:
    path = run / checkpoint.CHECKPOINT_NAME
    damage(path)  # type: ignore[operator]
    refused(lambda: checkpoint.read(path), str(path))
    refused(lambda: resume(run), str(path))


def test_a_checkpoint_with_edited_metadata_is_refused(run: Path) -> None:
    """Flip one digit of the epoch counter inside the header: safetensors still reads it, the checksum does not."""
    path = run / checkpoint.CHECKPOINT_NAME
    data = path.read_bytes()
    at = data.index(b'\\"epoch\\": 2')
    path.write_bytes(data[:at] + b'\\"epoch\\": 1' + data[at + len(b'\\"epoch\\": 2') :])
    refused(lambda: checkpoint.read(path), str(path), "checksum")


def test_a_checkpoint_of_another_format_is_refused(run: Path) -> None:
    path = run / checkpoint.CHECKPOINT_NAME
    tensors, meta = checkpoint.read(path)
    from safetensors.torch import save_file as save_torch

    save_torch(tensors, str(path), metadata={**meta, "format": "1"})
    refused(lambda: checkpoint.read(path), str(path), "format '1'")


def test_a_checkpoint_from_other_data_is_refused(run: Path) -> None:
    """Same model and dim, but 60 users and 30 movies instead of 200 and 100: the shapes do not fit."""
    ratings = generate_low_rank(60, 30, 1_000, rank=2, seed=5).ratings
    other = Dataset("other", ratings, align_movies(None, ratings.item_vocab), None, RatingScale(0.5, 5.0, 0.5))
    path = run / checkpoint.CHECKPOINT_NAME
    refused(lambda: fit(CONFIG.replace(epochs=3), other, ratings, run_dir=run, resume=True, progress=False), str(path))
    assert path.is_file()


def test_train_resume_on_a_damaged_checkpoint_exits_2(run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    flip(run / checkpoint.CHECKPOINT_NAME)
    dataset_dir = run.parent / "data"
    dataset, _ = low_rank_dataset()
    frame = dataset.ratings.to_frame()
    frame["rating"] = frame["rating"].clip(0.5, 5.0).round(1)
    dataset_dir.mkdir()
    frame.to_csv(dataset_dir / "ratings.csv", index=False)
    args = ["train", "--data", str(dataset_dir), "--model", "biased-mf", "--dim", "4", "--out", str(run)]
    assert main([*args, "--resume", "--quiet"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert str(run / checkpoint.CHECKPOINT_NAME) in err and "Traceback" not in err


def test_checkpoint_checksum_covers_every_tensor() -> None:
    tensors = {"a": torch.arange(6, dtype=torch.float32), "b": torch.tensor(3.0), "c": torch.zeros(0)}
    base = checkpoint.checksum(tensors, {"format": "2"})
    assert checkpoint.checksum(tensors, {"format": "2", "sha256": "ignored"}) == base
    assert checkpoint.checksum({**tensors, "b": torch.tensor(4.0)}, {"format": "2"}) != base
    assert checkpoint.checksum({**tensors, "a": tensors["a"].reshape(2, 3)}, {"format": "2"}) != base
    assert checkpoint.checksum(tensors, {"format": "3"}) != base


# ------------------------------------------------------------------------------------------------ data cache


@pytest.mark.parametrize(
    "damage",
    [
        lambda folder: truncate(folder / "ratings.parquet"),
        lambda folder: flip(folder / "items.parquet"),
        lambda folder: (folder / "meta.json").write_text("{garbage"),
        lambda folder: (folder / "meta.json").write_text("[]"),
        lambda folder: (folder / "meta.json").write_text('{"format": 2}'),
        lambda folder: (folder / "movies.parquet").unlink(),
        lambda folder: shutil.rmtree(folder) or folder.write_bytes(b"not a folder"),
    ],
    ids=["truncated", "flipped", "bad-json", "json-list", "no-fields", "missing-file", "file-not-folder"],
)
def test_a_damaged_cache_is_rebuilt_silently(tmp_path: Path, damage: object) -> None:
    source = write(tmp_path / "ratings.csv", "userId,movieId,rating,timestamp\n1,10,4.0,1\n1,20,3.5,2\n2,10,5.0,3\n")
    fresh = load_dataset(source)
    (folder,) = list(paths.cache_dir().iterdir())
    damage(folder)  # type: ignore[operator]
    again = load_dataset(source)
    np.testing.assert_array_equal(again.ratings.ratings, fresh.ratings.ratings)
    np.testing.assert_array_equal(again.ratings.items, fresh.ratings.items)
    assert again.movies["title"].tolist() == fresh.movies["title"].tolist()
    assert json.loads((folder / "meta.json").read_text())["format"] == 2  # and the cache is whole again
