"""Load a dataset by release name or path: parse once, then reload from a Parquet cache."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from movierec import atomic, paths
from movierec.data.movielens import ParseOptions, ParseReport, RawTables, detect_format, read_source
from movierec.data.ratings import Dataset, Ratings, RatingScale, Vocabulary
from movierec.errors import DataError, MovieRecError

CACHE_FORMAT = 2  # 2: meta.json also records what parsing skipped or merged
DEFAULT_SCALE = RatingScale(0.5, 5.0, 0.5)  # the widest MovieLens star scale; 1-5 releases sit inside it


def resolve_source(source: str | Path) -> tuple[str, Path]:
    """A release name or a path, as ``(display name, path on disk)``."""
    from movierec.data.datasets import RELEASES
    from movierec.data.download import dataset_path, is_downloaded

    text = str(source)
    if text in RELEASES:
        if text == "ml-latest-small":
            return text, paths.EMBEDDED_DIR / "ml-latest-small"
        if is_downloaded(text):
            return text, dataset_path(text)
        raise MovieRecError(f"The release {text!r} is not downloaded yet; run `movierec data fetch {text}` first.")
    path = Path(text).expanduser()
    if path.exists():
        if path.is_dir() and not any(path.iterdir()):
            raise DataError(f"The folder {path} is empty; expected MovieLens files such as ratings.csv in it.")
        detect_format(path)
        return path.name or text, path.resolve()
    names = ", ".join(RELEASES)
    raise MovieRecError(f"{text!r} is neither a known release ({names}) nor an existing file or folder.")


def load_dataset(
    source: str | Path,
    options: ParseOptions | None = None,
    *,
    movies_file: Path | None = None,
    use_cache: bool = True,
) -> Dataset:
    """Parse ``source`` (a release name, release folder or ratings CSV), caching the result as Parquet."""
    return load_dataset_with_report(source, options, movies_file=movies_file, use_cache=use_cache)[0]


def load_dataset_with_report(
    source: str | Path,
    options: ParseOptions | None = None,
    *,
    movies_file: Path | None = None,
    use_cache: bool = True,
) -> tuple[Dataset, ParseReport]:
    """Like ``load_dataset``, also returning what parsing skipped or merged (kept in the cache too).

    The ratings' arrays are numpy's own (``Ratings.from_frame`` and the cache reader copy them out of Arrow's
    memory), and what Arrow's allocator kept of the tables read and written goes back to the system: it keeps
    memory freed to it for reuse (0.5 GB after reading ML-25M's cache), which would stay resident through training.
    """
    loaded = _load_dataset(source, options, movies_file, use_cache)
    pa.default_memory_pool().release_unused()
    return loaded


def _load_dataset(
    source: str | Path, options: ParseOptions | None, movies_file: Path | None, use_cache: bool
) -> tuple[Dataset, ParseReport]:
    options = options or ParseOptions(scale=DEFAULT_SCALE)
    name, path = resolve_source(source)
    folder = _cache_folder(name, path, options, movies_file)
    if use_cache:
        cached = read_cache_with_report(folder)
        if cached is not None:
            return cached
    raw = read_source(path, options)
    if movies_file is not None:
        from movierec.data.movielens import read_movies_csv

        raw.movies = read_movies_csv(movies_file)
    dataset = build_dataset(name, raw)
    if use_cache:
        write_cache(folder, dataset, raw.report)
    return dataset, raw.report


def build_dataset(name: str, raw: RawTables) -> Dataset:
    """Index raw tables: item vocabulary = rated movies plus the whole movies table."""
    ratings_frame = raw.ratings
    movie_ids = raw.movies["movieId"].to_numpy() if raw.movies is not None else np.empty(0, np.int64)
    user_vocab = Vocabulary.from_ids(pd.unique(ratings_frame["userId"].to_numpy()))
    item_vocab = Vocabulary.from_ids(pd.unique(ratings_frame["movieId"].to_numpy()), movie_ids)
    ratings = Ratings.from_frame(ratings_frame, user_vocab, item_vocab)
    movies = align_movies(raw.movies, item_vocab)
    return Dataset(
        name=name,
        ratings=ratings,
        movies=movies,
        tags=raw.tags,
        scale=RatingScale.infer(ratings.ratings),
        n_movies_listed=0 if raw.movies is None else len(raw.movies),
    )


def align_movies(movies: pd.DataFrame | None, item_vocab: Vocabulary) -> pd.DataFrame:
    """One movies row per item index; movies missing from the table get a placeholder title."""
    frame = pd.DataFrame({"movieId": item_vocab.ids})
    if movies is not None:
        frame = frame.merge(movies.drop_duplicates("movieId"), on="movieId", how="left")
    else:
        frame = frame.assign(title=None, year=pd.array([None] * len(frame), dtype="Int64"), genres="")
    frame["title"] = frame["title"].fillna(frame["movieId"].map(lambda i: f"Movie {i}")).astype(str)
    frame["genres"] = frame["genres"].fillna("").astype(str)
    frame["year"] = frame["year"].astype("Int64")
    return frame[["movieId", "title", "year", "genres"]].reset_index(drop=True)


# ------------------------------------------------------------------------------------------------------ cache

RATINGS_FILE = "ratings.parquet"
"""The cache's ratings (user and item indices, rating, timestamp), in the order of the dataset's ratings."""


@dataclass(frozen=True)
class CachedFile:
    """A file of the Parquet cache, and the sha256 the cache's meta.json records for it."""

    path: Path
    sha256: str


def cached_ratings(source: str | Path, options: ParseOptions | None = None) -> CachedFile | None:
    """The cache's ratings file of ``source`` parsed with ``options``, as ``load_dataset`` read or wrote it; None
    when there is none (never cached, or the source files changed since)."""
    options = options or ParseOptions(scale=DEFAULT_SCALE)
    name, path = resolve_source(source)
    folder = _cache_folder(name, path, options)
    try:
        meta = json.loads((folder / "meta.json").read_text())
        if meta.get("format") != CACHE_FORMAT or not (folder / RATINGS_FILE).is_file():
            return None
        return CachedFile(folder / RATINGS_FILE, str(meta["files"][RATINGS_FILE]))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def read_ratings_file(path: Path, user_vocab: Vocabulary, item_vocab: Vocabulary) -> Ratings:
    """The cache's ratings file at ``path`` over the vocabularies given (arrays in numpy's own memory)."""
    table = pq.read_table(path, columns=["user", "item", "rating", "timestamp"])
    users, items, ratings, stamps = (table.column(i).to_numpy().copy() for i in range(4))  # out of Arrow's memory
    return Ratings(users, items, ratings, stamps, user_vocab, item_vocab)


def write_cache(folder: Path, dataset: Dataset, report: ParseReport | None = None) -> None:
    """Write the cache as one folder, atomically (a killed writer leaves no half-written cache)."""
    r = dataset.ratings
    with atomic.atomic_directory(folder) as tmp:
        table = pa.table({"user": r.users, "item": r.items, "rating": r.ratings, "timestamp": r.timestamps})
        # no dictionary pages: building them hashes every value (ML-25M: 1.6 s CPU to write, 0.8 without), and
        # the file reads back faster without them (2.8 -> 1.6 s) for 30% more bytes
        pq.write_table(
            table, tmp / RATINGS_FILE, compression="lz4", use_dictionary=False, row_group_size=max(1, len(r))
        )
        pq.write_table(pa.table({"id": r.user_vocab.ids}), tmp / "users.parquet")
        pq.write_table(pa.table({"id": r.item_vocab.ids}), tmp / "items.parquet")
        dataset.movies.to_parquet(tmp / "movies.parquet", index=False)
        if dataset.tags is not None:
            dataset.tags.to_parquet(tmp / "tags.parquet", index=False)
        meta = {
            "format": CACHE_FORMAT,
            "name": dataset.name,
            "scale": dataset.scale.to_dict(),
            "n_movies_listed": dataset.n_movies_listed,
            "report": _report_to_dict(report or ParseReport()),
            "files": {f.name: file_sha256(f) for f in sorted(tmp.glob("*.parquet"))},
        }
        atomic.write_json(tmp / "meta.json", meta)


def read_cache_with_report(folder: Path) -> tuple[Dataset, ParseReport] | None:
    """The cached dataset and its parse report, or None when there is no usable cache."""
    meta_path = folder / "meta.json"
    if not meta_path.is_file():
        return None
    try:
        meta = json.loads(meta_path.read_text())
        if meta.get("format") != CACHE_FORMAT:
            return None
        if any(file_sha256(folder / name) != digest for name, digest in meta["files"].items()):
            return None  # damaged: parse the source again
        ratings = read_ratings_file(
            folder / RATINGS_FILE,
            Vocabulary(pq.read_table(folder / "users.parquet").column("id").to_numpy()),
            Vocabulary(pq.read_table(folder / "items.parquet").column("id").to_numpy()),
        )
        tags_path = folder / "tags.parquet"
        report = _report_from_dict(meta["report"])
        dataset = Dataset(
            name=meta["name"],
            ratings=ratings,
            movies=pd.read_parquet(folder / "movies.parquet"),
            tags=pd.read_parquet(tags_path) if tags_path.is_file() else None,
            scale=RatingScale(**meta["scale"]),
            n_movies_listed=int(meta["n_movies_listed"]),
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError, pa.ArrowException):
        return None
    return dataset, report


def _report_to_dict(report: ParseReport) -> dict[str, Any]:
    return {"skipped": dict(report.skipped), "duplicates_merged": report.duplicates_merged}


def _report_from_dict(doc: dict[str, Any]) -> ParseReport:
    skipped = Counter({str(reason): int(count) for reason, count in doc["skipped"].items()})
    return ParseReport(skipped=skipped, duplicates_merged=int(doc["duplicates_merged"]))


def _source_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    return sorted(p for p in path.iterdir() if p.is_file() and p.suffix in {".csv", ".dat", ".data", ".item"})


def _cache_folder(name: str, path: Path, options: ParseOptions, movies_file: Path | None = None) -> Path:
    sources = _source_files(path) + ([movies_file] if movies_file else [])
    return paths.cache_dir() / f"{_safe(name)}-{_cache_key(sources, options)}"


def _cache_key(files: list[Path], options: ParseOptions) -> str:
    digest = hashlib.sha256(f"v{CACHE_FORMAT}|{options!r}".encode())
    for f in files:
        stat = f.stat()
        digest.update(f"{f.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:16]


def file_sha256(path: Path) -> str:
    """The sha256 of a file's bytes in hex, read a block at a time."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
