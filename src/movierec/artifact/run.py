"""The run folder: the unit of reproducibility.

```
RUN_DIR/
  config.json          training and data settings
  model.safetensors    the exported factors and biases (weights only; no code is unpickled to load them)
  vocab/users.parquet  raw userId of each user index
  vocab/items.parquet  raw movieId of each item index
  movies.parquet       the catalog: movieId, title, year, genres (one row per item index)
  train.parquet        the training ratings (user, item, rating), to never recommend what a user rated,
  or train_source.json instead: where to rebuild them from (see REFERENCE_MIN_RATINGS)
  metrics.json         test metrics beside the baselines
  history.csv          one row per epoch (losses, validation RMSE, lr, seconds, throughput, the ridge)
  plots/learning_curve.png
  manifest.json        format version and a sha256 of every file above
  checkpoint.safetensors  (while training) the state to --resume from
```
Every file is written atomically and the manifest last, so a folder with a valid manifest is complete.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import typing
from collections.abc import Iterable
from dataclasses import MISSING, dataclass, fields
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from safetensors import SafetensorError
from safetensors.numpy import load as load_safetensors
from safetensors.numpy import save_file

from movierec import atomic
from movierec.config import TrainConfig
from movierec.data.loader import CachedFile, file_sha256, read_ratings_file
from movierec.data.ratings import Ratings, Vocabulary
from movierec.data.source import DataOptions, split_ratings
from movierec.errors import ArtifactError, MovieRecError
from movierec.models.factors import FactorModel, FactorParams

RUN_FORMAT = 1
TRAIN_COPY = "train.parquet"
TRAIN_SOURCE = "train_source.json"
REFERENCE_MIN_RATINGS = 1_000_000
"""A run keeps a copy of its training ratings (``train.parquet``) unless there are more than this many and they
came from the Parquet cache: then ``train_source.json`` records the cache's ratings file, its sha256 and a sha256 of
the training rows, and ``load_run`` rebuilds them with the run's data settings (config.json's ``data``: the split).
Small runs stay whole folders that can be copied anywhere, and a missing cache costs nothing; large ones do not
repeat what the cache holds (at ML-25M size 60 MB of a 250 MB run folder). ``train --self-contained`` keeps the
copy at any size; sharded runs always do (their training side is streamed from the shard parts)."""
RETRAIN = "retrain, or train with --self-contained to keep a copy of the training ratings in the run folder"


def _field_kinds() -> dict[str, type]:
    """Each ``FactorParams`` field's kind in the weights file: ``np.ndarray`` (a tensor), ``float`` or ``str``
    (metadata)."""
    kinds: dict[str, type] = {}
    for name, hint in typing.get_type_hints(FactorParams).items():
        if hint is np.ndarray or set(typing.get_args(hint)) == {np.ndarray, type(None)}:
            kinds[name] = np.ndarray
        elif hint is float:
            kinds[name] = float
        elif typing.get_origin(hint) is typing.Literal:
            kinds[name] = str
        else:
            raise TypeError(f"FactorParams.{name} has the type {hint}, which the run folder cannot store")
    return kinds


PARAM_KINDS = _field_kinds()
"""How the weights file stores each ``FactorParams`` field: arrays as tensors (booleans as uint8; an array that
is None is left out), floats and strings as metadata. Fields with a default may be absent: runs written
before the field existed load with the default."""


@dataclass(frozen=True)
class RunRecord:
    """What a run folder says about its training: the settings, the test metrics and the per-epoch history."""

    path: Path
    config: TrainConfig
    metrics: dict[str, Any]
    history: list[dict[str, float]]
    data: dict[str, Any]


@dataclass(frozen=True)
class Run(RunRecord):
    """A loaded run folder: its record, the model, the catalog and the training ratings."""

    model: FactorModel
    movies: pd.DataFrame
    train: Ratings

    @property
    def user_vocab(self) -> Vocabulary:
        return self.train.user_vocab

    @property
    def item_vocab(self) -> Vocabulary:
        return self.train.item_vocab


def save_run(
    run_dir: Path,
    *,
    config: TrainConfig,
    model: FactorModel,
    movies: pd.DataFrame,
    train: Ratings,
    metrics: dict[str, Any],
    history: list[dict[str, float]],
    data: dict[str, Any],
    train_source: CachedFile | None = None,
) -> None:
    """Write every artifact of a run atomically, the manifest last. ``train_source`` is the cache file the training
    ratings were split from with ``data``'s settings: above ``REFERENCE_MIN_RATINGS`` the run refers to it instead
    of copying them."""
    run_dir.mkdir(parents=True, exist_ok=True)
    # a rewrite killed midway must not leave the old manifest vouching for a mix of old and new files
    (run_dir / "manifest.json").unlink(missing_ok=True)
    atomic.write_json(run_dir / "config.json", {"format": RUN_FORMAT, "train": config.to_dict(), "data": data})
    save_params(run_dir / "model.safetensors", model.params, model.name)
    _write_parquet(run_dir / "vocab" / "users.parquet", pa.table({"userId": train.user_vocab.ids}))
    _write_parquet(run_dir / "vocab" / "items.parquet", pa.table({"movieId": train.item_vocab.ids}))
    _write_parquet(run_dir / "movies.parquet", pa.Table.from_pandas(movies, preserve_index=False))
    save_train(run_dir, train, train_source if len(train) > REFERENCE_MIN_RATINGS else None)
    write_metrics(run_dir, metrics)
    write_history(run_dir / "history.csv", history)
    if history:
        from movierec.artifact.curves import plot_learning_curve

        plot_learning_curve(history, run_dir / "plots" / "learning_curve.png", title=f"{model.name} learning curve")
    write_manifest(run_dir)


def save_train(run_dir: Path, train: Ratings, source: CachedFile | None) -> None:
    """The run's training ratings: a reference to the cache file ``source`` (``TRAIN_SOURCE``), or without one a copy
    (``TRAIN_COPY``); the other file goes, so a run trained again into the folder never lists both."""
    (run_dir / (TRAIN_COPY if source is not None else TRAIN_SOURCE)).unlink(missing_ok=True)
    if source is None:
        _write_parquet(
            run_dir / TRAIN_COPY, pa.table({"user": train.users, "item": train.items, "rating": train.ratings})
        )
        return
    reference = {"ratings_file": str(source.path.resolve()), "sha256": source.sha256, "rows": len(train)}
    atomic.write_json(run_dir / TRAIN_SOURCE, {**reference, "rows_sha256": _rows_sha256(train)})


def stream_train(run_dir: Path, parts: Iterable[Ratings]) -> None:
    """Write a saved run's ``train.parquet`` again from ``parts`` (in that order), holding one part at a time in
    memory: sharded training's rank 0 saves its run with no training rows, then streams every part in here. The
    manifest goes first and comes back last, so a process killed in between leaves no run that vouches for it."""
    (run_dir / "manifest.json").unlink(missing_ok=True)
    with atomic.atomic_path(run_dir / "train.parquet") as tmp:
        writer: pq.ParquetWriter | None = None
        for part in parts:
            table = pa.table({"user": part.users, "item": part.items, "rating": part.ratings})
            writer = writer or pq.ParquetWriter(tmp, table.schema)
            writer.write_table(table)
        if writer is not None:
            writer.close()
    write_manifest(run_dir)


def write_metrics(run_dir: Path, metrics: dict[str, Any]) -> None:
    atomic.write_json(run_dir / "metrics.json", metrics)
    if (run_dir / "manifest.json").exists():
        write_manifest(run_dir)


def read_record(run_dir: str | Path) -> RunRecord:
    """The settings, metrics and history of a verified run folder, without loading its model or data."""
    run_dir = _run_folder(run_dir)
    return _record_of(run_dir, verify_run(run_dir))


def load_run(run_dir: str | Path) -> Run:
    """Load and verify a run folder; damaged, foreign or missing files get a clear ArtifactError."""
    run_dir = _run_folder(run_dir)
    files = verify_run(run_dir)  # parsed below from these very bytes, never re-read: one version of the run
    record = _record_of(run_dir, files)
    params, name = params_from_bytes(run_dir / "model.safetensors", _bytes_of(run_dir, files, "model.safetensors"))
    users = Vocabulary(_table_of(run_dir, files, "vocab/users.parquet", ["userId"]).column("userId").to_numpy())
    items = Vocabulary(_table_of(run_dir, files, "vocab/items.parquet", ["movieId"]).column("movieId").to_numpy())
    if TRAIN_SOURCE in files and TRAIN_COPY not in files:
        train = _rebuilt_train(run_dir, files, record.data, users, items)
    else:
        table = _table_of(run_dir, files, TRAIN_COPY, ["user", "item", "rating"])
        train = Ratings(
            table.column("user").to_numpy(),
            table.column("item").to_numpy(),
            table.column("rating").to_numpy(),
            np.zeros(table.num_rows, np.int64),
            users,
            items,
        )
    if params.n_users != len(users) or params.n_items != len(items):
        raise ArtifactError(f"The run folder {run_dir} is inconsistent: the model and vocabularies differ in size.")
    return Run(
        **{f.name: getattr(record, f.name) for f in fields(RunRecord)},
        model=FactorModel(params, name),
        movies=_frame_of(run_dir, files, "movies.parquet", ["movieId", "title", "year", "genres"]),
        train=train,
    )


def _rebuilt_train(
    run_dir: Path, files: dict[str, bytes], data: dict[str, Any], users: Vocabulary, items: Vocabulary
) -> Ratings:
    """The training ratings of a run that refers to them (``TRAIN_SOURCE``): its split of the cache file, the rows
    checked against the sha256 recorded when it was saved (no timestamps, as a copy has none)."""
    path = run_dir / TRAIN_SOURCE
    doc = _json_of(run_dir, files, TRAIN_SOURCE)
    try:
        cache, digest, rows = Path(doc["ratings_file"]), str(doc["sha256"]), str(doc["rows_sha256"])
        options = DataOptions(**data)
    except (KeyError, TypeError, MovieRecError):
        raise ArtifactError(f"The run file {path} is damaged: it lacks the cache file or its checksums.") from None
    if not cache.is_file():
        raise ArtifactError(f"The run {run_dir} refers to its training ratings in {cache}, which is gone; {RETRAIN}.")
    if file_sha256(cache) != digest:
        raise ArtifactError(
            f"The run {run_dir} refers to its training ratings in {cache}, whose checksum is no longer the one it "
            f"recorded; {RETRAIN}."
        )
    try:
        train = split_ratings(read_ratings_file(cache, users, items), options).train.without_timestamps()
    except (OSError, ValueError, pa.ArrowException) as exc:
        raise ArtifactError(f"The cache file {cache} that the run {run_dir} uses cannot be read ({exc}).") from None
    if _rows_sha256(train) != rows:
        raise ArtifactError(
            f"The training ratings rebuilt from {cache} differ from those the run {run_dir} was trained on; {RETRAIN}."
        )
    return train


def _rows_sha256(train: Ratings) -> str:
    """A sha256 of the training rows (user and item indices, ratings, in order)."""
    digest = hashlib.sha256()
    for column, dtype in ((train.users, "<i4"), (train.items, "<i4"), (train.ratings, "<f4")):
        digest.update(np.ascontiguousarray(column, dtype=dtype).data)
    return digest.hexdigest()


def _run_folder(run_dir: str | Path) -> Path:
    """``run_dir`` as a Path, once it is known to be a folder."""
    run_dir = Path(run_dir)
    if run_dir.is_file():
        raise ArtifactError(f"{run_dir} is a file; expected a run folder written by `movierec train --out DIR`.")
    if not run_dir.is_dir():
        raise ArtifactError(f"The run folder {run_dir} does not exist; train one with `movierec train --out DIR`.")
    return run_dir


def _record_of(run_dir: Path, files: dict[str, bytes]) -> RunRecord:
    config_doc = _json_of(run_dir, files, "config.json")
    return RunRecord(
        path=run_dir,
        config=TrainConfig.from_dict(config_doc["train"], source=str(run_dir / "config.json")),
        metrics=_json_of(run_dir, files, "metrics.json"),
        history=_history_of(run_dir / "history.csv", _bytes_of(run_dir, files, "history.csv")),
        data=config_doc.get("data", {}),
    )


# --------------------------------------------------------------------------------------------------- weights


def save_params(path: Path, params: FactorParams, name: str) -> None:
    arrays: dict[str, np.ndarray] = {}
    meta = {"format": str(RUN_FORMAT), "model": name}
    for key, kind in PARAM_KINDS.items():
        value = getattr(params, key)
        if kind is not np.ndarray:
            meta[key] = str(value)
        elif value is not None:
            arrays[key] = np.ascontiguousarray(value.astype(np.uint8) if value.dtype == bool else value)
    with atomic.atomic_path(path) as tmp:
        save_file(arrays, str(tmp), metadata=meta)


def load_params(path: Path) -> tuple[FactorParams, str]:
    if not path.is_file():
        raise ArtifactError(f"The model file {path} is missing; is this a movierec run folder?")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ArtifactError(f"The model file {path} cannot be read ({exc}).") from None
    return params_from_bytes(path, data)


def params_from_bytes(path: Path, data: bytes) -> tuple[FactorParams, str]:
    """The factors in a safetensors file's bytes (``path`` only names it in errors)."""
    arrays, meta = _safetensors_of(path, data)
    if meta.get("format") != str(RUN_FORMAT):
        raise ArtifactError(
            f"The model file {path} has format {meta.get('format')!r}; this movierec reads format {RUN_FORMAT}."
        )
    values: dict[str, Any] = {}
    try:
        for f in fields(FactorParams):
            kind = PARAM_KINDS[f.name]
            stored = arrays.get(f.name) if kind is np.ndarray else meta.get(f.name)
            if stored is None and (f.default is not MISSING or f.default_factory is not MISSING):
                continue  # written before the field existed (or None): the default
            if stored is None:
                raise KeyError(f.name)
            values[f.name] = _param_value(kind, stored)
    except (KeyError, ValueError) as exc:
        raise ArtifactError(f"The model file {path} lacks the entry {exc}; it was not written by movierec.") from None
    return FactorParams(**values), meta.get("model", "model")


def _param_value(kind: type, stored: Any) -> Any:
    """A stored field as ``FactorParams`` holds it: booleans back from uint8, floats from their text."""
    if kind is np.ndarray:
        return stored.astype(bool) if stored.dtype == np.uint8 else stored
    return float(stored) if kind is float else stored


# ------------------------------------------------------------------------------------------------- manifest


def write_manifest(run_dir: Path) -> None:
    files = sorted(p for p in run_dir.rglob("*") if p.is_file() and not _transient(p.relative_to(run_dir)))
    entries = {str(p.relative_to(run_dir)): file_sha256(p) for p in files if not p.name.startswith(".")}
    atomic.write_json(run_dir / "manifest.json", {"format": RUN_FORMAT, "files": entries})


TRANSIENT = frozenset({"manifest.json", "checkpoint.safetensors", "checkpoint-shards"})
"""Names in a run folder that the manifest never lists: itself, and the checkpoints that go when training ends
(a single process's file, and the sharded run's folder of per-rank files)."""


def _transient(relative: Path) -> bool:
    return relative.name in TRANSIENT or relative.parts[0] in TRANSIENT


def verify_run(run_dir: Path) -> dict[str, bytes]:
    """A complete run whose parts belong together: checksums match, the weights are of the configured model and
    as large as the vocabularies. Returns the verified contents of every file, by name in the manifest."""
    files = read_verified(run_dir)
    train = _json_of(run_dir, files, "config.json").get("train")
    model = train.get("model") if isinstance(train, dict) else None
    if model is None:
        raise ArtifactError(f"The run file {run_dir / 'config.json'} has no training settings; is it a movierec run?")
    path = run_dir / "model.safetensors"
    arrays, meta = _safetensors_of(path, _bytes_of(run_dir, files, "model.safetensors"))
    if meta.get("model") != model:
        raise ArtifactError(
            f"The run folder {run_dir} is inconsistent: config.json says model {model!r} "
            f"but model.safetensors holds {meta.get('model')!r}; train the run again."
        )
    shapes = [list(arrays[key].shape) if key in arrays else None for key in ("user_bias", "item_bias")]
    sizes = [[_table_of(run_dir, files, f"vocab/{name}.parquet", []).num_rows] for name in ("users", "items")]
    if shapes != sizes:
        raise ArtifactError(
            f"The run folder {run_dir} is inconsistent: model.safetensors was trained on other users or movies "
            "than its vocabularies list; train the run again."
        )
    return files


def read_verified(run_dir: Path) -> dict[str, bytes]:
    """Every file the manifest lists, each read once and checked against one reading of the manifest.

    Parsing these bytes (rather than opening the files again) gives one whole version of the run even while
    another process rewrites the folder: a file replaced meanwhile fails its checksum instead of mixing in.
    """
    path = run_dir / "manifest.json"
    if not path.is_file():
        raise ArtifactError(
            f"The folder {run_dir} is not a complete movierec run (no manifest.json); train into it again."
        )
    manifest = _read_json(path)
    if manifest.get("format") != RUN_FORMAT:
        raise ArtifactError(
            f"The run {run_dir} has format {manifest.get('format')!r}; this movierec reads format {RUN_FORMAT}."
        )
    files = manifest.get("files", {})
    if not isinstance(files, dict):
        raise ArtifactError(f"The run file {path} is damaged: its file list is not a JSON object.")
    contents: dict[str, bytes] = {}
    for name, digest in files.items():
        relative = PurePosixPath(name)
        if relative.is_absolute() or ".." in relative.parts or "\\" in name or not relative.parts:
            raise ArtifactError(
                f"The manifest {path} lists {name!r}, outside the run folder; it was not written by movierec."
            )
        file = run_dir / name
        try:
            data = file.read_bytes()
        except FileNotFoundError:
            raise ArtifactError(f"The run file {file} is missing.") from None
        except OSError as exc:
            raise ArtifactError(f"The run file {file} cannot be read ({exc}).") from None
        if hashlib.sha256(data).hexdigest() != digest:
            raise ArtifactError(f"The run file {file} is damaged: its checksum does not match the manifest.")
        contents[name] = data
    return contents


# -------------------------------------------------------------------------------------------------- helpers


def write_history(path: Path, history: list[dict[str, float]]) -> None:
    buffer = io.StringIO()
    if history:
        writer = csv.DictWriter(buffer, fieldnames=list(history[0]))
        writer.writeheader()
        writer.writerows(history)
    atomic.write_text(path, buffer.getvalue())


def read_history(path: Path) -> list[dict[str, float]]:
    if not path.is_file():
        return []
    return _history_of(path, path.read_bytes())


def _history_of(path: Path, data: bytes) -> list[dict[str, float]]:
    try:
        rows = csv.DictReader(io.StringIO(data.decode("utf-8"), newline=""))
        return [{str(k): float(v) for k, v in row.items()} for row in rows]
    except (ValueError, TypeError, csv.Error):  # bad bytes, a non-number, a row longer than the header
        raise ArtifactError(f"The run file {path} is damaged: it is not a CSV of numbers.") from None


def _write_parquet(path: Path, table: pa.Table) -> None:
    with atomic.atomic_path(path) as tmp:
        pq.write_table(table, tmp)


def _bytes_of(run_dir: Path, files: dict[str, bytes], name: str) -> bytes:
    if name not in files:
        raise ArtifactError(f"The run {run_dir} lacks {name}: its manifest does not list it; train into it again.")
    return files[name]


def _table_of(run_dir: Path, files: dict[str, bytes], name: str, columns: list[str]) -> pa.Table:
    path = run_dir / name
    try:
        table = pq.read_table(pa.BufferReader(_bytes_of(run_dir, files, name)))
    except (OSError, pa.ArrowException) as exc:
        raise ArtifactError(f"The run file {path} is damaged ({exc}).") from None
    missing = [column for column in columns if column not in table.column_names]
    if missing:
        raise ArtifactError(f"The run file {path} lacks the column(s) {missing}; it was not written by movierec.")
    return table


def _frame_of(run_dir: Path, files: dict[str, bytes], name: str, columns: list[str]) -> pd.DataFrame:
    table = _table_of(run_dir, files, name, columns)
    try:
        return table.to_pandas()
    except (ValueError, pa.ArrowException) as exc:  # e.g. damaged pandas metadata in the file
        raise ArtifactError(f"The run file {run_dir / name} is damaged ({exc}).") from None


def _json_of(run_dir: Path, files: dict[str, bytes], name: str) -> dict[str, Any]:
    return _parse_json(run_dir / name, _bytes_of(run_dir, files, name))


def _safetensors_of(path: Path, data: bytes) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Arrays and metadata of safetensors bytes; damaged bytes are an ArtifactError naming ``path``."""
    try:
        return load_safetensors(data), safetensors_metadata(data)
    except (SafetensorError, ValueError) as exc:
        raise ArtifactError(f"The model file {path} is damaged or not a safetensors file ({exc}).") from None


def safetensors_metadata(data: bytes) -> dict[str, str]:
    """The ``__metadata__`` of a safetensors file's bytes (its JSON header); ValueError when there is no header."""
    size = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + size])
    if not isinstance(header, dict):
        raise ValueError("the header is not a JSON object")
    return {str(k): str(v) for k, v in (header.get("__metadata__") or {}).items()}


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ArtifactError(f"The run file {path} is missing.") from None
    return _parse_json(path, data)


def _parse_json(path: Path, data: bytes) -> dict[str, Any]:
    try:
        value = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ArtifactError(f"The run file {path} is damaged: it is not valid JSON.") from None
    if not isinstance(value, dict):
        raise ArtifactError(f"The run file {path} is damaged: expected a JSON object.")
    return value
