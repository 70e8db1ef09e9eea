"""Sharded training data: the training ratings cut into parts by user owner, for training across processes.

``movierec data shard SOURCE --parts N --out DIR`` reads a source once (with the split ``movierec train`` makes)
and writes one folder:

- ``part-00000.parquet`` ... ``part-{N-1}``: the training ratings whose user index ``u`` has ``u % N == k``
  (columns ``user``, ``item``, ``rating``, ``timestamp``; indices into the global vocabularies);
- ``test.parquet``: the held-out ratings (read by rank 0 alone, to evaluate the run);
- ``users.parquet``, ``items.parquet``: the id vocabularies; ``movies.parquet`` (and ``tags.parquet``): the catalog;
- ``manifest.json`` (last): the parts, their rating counts, the sizes, the rating scale, the data settings the
  split came from, and a sha256 of every file, checked when a file is read.

A group of W processes reads it when W divides N: rank ``r`` reads the parts ``k`` with ``k % W == r``, which hold
exactly the users with ``u % W == r``. Rows are owned the same way on both sides (``index % W``), so the
validation split and the starting vectors are functions of the global indices and the seed alone
(``stable_uniform``): the same at every world size.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from movierec import atomic
from movierec.data.loader import file_sha256
from movierec.data.ratings import Dataset, Ratings, RatingScale, Vocabulary, no_timestamps
from movierec.data.split import Split
from movierec.errors import DataError, MovieRecError

SHARD_FORMAT = 1
MANIFEST = "manifest.json"
HASH_CHUNK = 1 << 20
"""Ratings hashed at once by ``validation_mask`` (its uint64 temporaries stay at a few MB, whatever the data's size)."""


def part_name(part: int) -> str:
    return f"part-{part:05d}.parquet"


def write_shards(dataset: Dataset, split: Split, parts: int, out: Path, data: dict[str, Any]) -> dict[str, Any]:
    """Write ``split``'s training ratings as ``parts`` parts by user owner into ``out`` (atomically: a killed writer
    leaves no half-written folder), with the test ratings, vocabularies and catalog; return the manifest.
    ``data`` records the data settings the split came from (a run trained on the shards records them)."""
    check_out(parts, out, split.train.n_users)
    train, test = split.train, split.test
    owner = train.users % parts
    with atomic.atomic_directory(out) as tmp:
        counts = []
        for part in range(parts):
            mine = train.take(np.flatnonzero(owner == part))
            counts.append(len(mine))
            _write_ratings(mine, tmp / part_name(part))
        _write_ratings(test, tmp / "test.parquet")
        catalog = {
            "users": pd.DataFrame({"id": train.user_vocab.ids}),
            "items": pd.DataFrame({"id": train.item_vocab.ids}),
            "movies": dataset.movies,
            "tags": dataset.tags,
        }
        for name, frame in catalog.items():
            if frame is not None:
                frame.to_parquet(tmp / f"{name}.parquet", index=False)
        manifest = {
            "format": SHARD_FORMAT,
            "name": dataset.name,
            "parts": parts,
            "part_ratings": counts,
            "n_train": len(train),
            "n_test": len(test),
            "n_users": train.n_users,
            "n_items": train.n_items,
            "scale": dataset.scale.to_dict(),
            "n_movies_listed": dataset.n_movies_listed,
            "data": data,
            "files": {path.name: file_sha256(path) for path in sorted(tmp.glob("*.parquet"))},
        }
        atomic.write_json(tmp / MANIFEST, manifest)
    return manifest


def check_out(parts: int, out: Path, n_users: int | None = None) -> None:
    """Refuse a part count (for ``n_users`` users, when known) or an output folder that cannot hold shards, in one
    sentence."""
    if parts < 1:
        raise MovieRecError(f"--parts {parts} is not a number of parts; give a whole number of at least 1.")
    if n_users is not None and parts > max(1, n_users):
        raise MovieRecError(f"--parts {parts} is more than the {n_users} users; give at most {n_users} parts.")
    if out.exists() and not out.is_dir():
        raise MovieRecError(f"--out {out} is a file; give a folder to write the shards in.")
    if out.is_dir() and any(out.iterdir()) and not (out / MANIFEST).is_file():
        raise MovieRecError(f"--out {out} holds other files; give a new or empty folder, or an earlier shard folder.")


@dataclass(frozen=True)
class ShardSet:
    """A shard folder, opened: its manifest, with the files read (and checked) on demand."""

    folder: Path
    manifest: dict[str, Any]

    @classmethod
    def open(cls, folder: Path) -> ShardSet:
        folder = Path(folder)
        if not (folder / MANIFEST).is_file():
            raise MovieRecError(
                f"{folder} is not a shard folder (it has no {MANIFEST}); write one with `movierec data shard`."
            )
        try:
            manifest = json.loads((folder / MANIFEST).read_text())
        except (OSError, ValueError) as exc:
            raise DataError(f"The shard manifest {folder / MANIFEST} cannot be read ({exc}).") from None
        if not isinstance(manifest, dict) or manifest.get("format") != SHARD_FORMAT:
            raise DataError(f"{folder} holds shards of another format; write them again with `movierec data shard`.")
        return cls(folder, manifest)

    @property
    def parts(self) -> int:
        return int(self.manifest["parts"])

    @property
    def scale(self) -> RatingScale:
        return RatingScale(**self.manifest["scale"])

    @property
    def data(self) -> dict[str, Any]:
        """The data settings the shards' split came from."""
        return dict(self.manifest["data"])

    def owned_parts(self, rank: int, world: int) -> list[int]:
        """The parts rank ``rank`` of ``world`` reads: those ``k`` with ``k % world == rank``."""
        if self.parts % world:
            raise MovieRecError(
                f"The shard folder {self.folder} has {self.parts} parts, which {world} processes cannot share "
                f"evenly; start a number of processes that divides {self.parts}, or shard again with --parts {world}."
            )
        return list(range(rank, self.parts, world))

    def read_owned(self, rank: int, world: int) -> Ratings:
        """The training ratings of the users rank ``rank`` of ``world`` owns (``user % world == rank``), and no more,
        without their dates (sharded training reads none: every timestamp is 0, in a view that takes no memory).
        Each part's columns are copied into arrays of the final size as it is read, and Arrow's pool, which keeps
        what is freed to it, is emptied after: a rank holds its ratings' 12 bytes each and not the Parquet tables."""
        parts = self.owned_parts(rank, world)
        size = sum(int(self.manifest["part_ratings"][part]) for part in parts)
        columns = {name: np.empty(size, dtype) for name, dtype in (("user", np.int32), ("item", np.int32),
                                                                  ("rating", np.float32))}  # fmt: skip
        start = 0
        for part in parts:
            table = self._table(part_name(part), columns=list(columns))
            for name, column in columns.items():
                position = start
                for chunk in table.column(name).chunks:
                    column[position : position + len(chunk)] = chunk.to_numpy()
                    position += len(chunk)
            start += table.num_rows
            del table
        pa.default_memory_pool().release_unused()
        users, items = self.vocabularies
        return Ratings(columns["user"], columns["item"], columns["rating"], no_timestamps(size), users, items)

    @functools.cached_property
    def vocabularies(self) -> tuple[Vocabulary, Vocabulary]:
        return Vocabulary(self._table("users.parquet").column("id").to_numpy()), Vocabulary(
            self._table("items.parquet").column("id").to_numpy()
        )

    def read_ratings(self, name: str) -> Ratings:
        table = self._table(name)
        users, items = self.vocabularies
        return Ratings(
            table.column("user").to_numpy(),
            table.column("item").to_numpy(),
            table.column("rating").to_numpy(),
            table.column("timestamp").to_numpy(),
            users,
            items,
        )

    @functools.cached_property
    def train(self) -> Ratings:
        """Every part's training ratings at once (a whole split; training reads only its own parts)."""
        return _concat(list(self.each_part()))

    def each_part(self) -> Iterator[Ratings]:
        """Every part's training ratings, one part at a time, in order."""
        return (self.read_ratings(part_name(part)) for part in range(self.parts))

    def split(self) -> Split:
        return Split(self.train, self.read_ratings("test.parquet"))

    @functools.cached_property
    def movies(self) -> pd.DataFrame:
        return pd.read_parquet(self._checked("movies.parquet"))

    def dataset(self, ratings: Ratings | None = None) -> Dataset:
        """The dataset the shards were cut from, holding ``ratings`` (by default every training rating: a rank's
        own ratings are enough for the catalog, the movies and tags)."""
        tags = self._checked("tags.parquet") if "tags.parquet" in self.manifest["files"] else None
        return Dataset(
            name=str(self.manifest["name"]),
            ratings=self.train if ratings is None else ratings,
            movies=self.movies,
            tags=pd.read_parquet(tags) if tags is not None else None,
            scale=self.scale,
            n_movies_listed=int(self.manifest["n_movies_listed"]),
        )

    def _table(self, name: str, columns: list[str] | None = None) -> pa.Table:
        return pq.read_table(self._checked(name), columns=columns)

    def _checked(self, name: str) -> Path:
        path = self.folder / name
        expected = self.manifest["files"].get(name)
        if not path.is_file() or file_sha256(path) != expected:
            raise DataError(f"The shard file {path} is missing or damaged; write the shards again.")
        return path


def validation_mask(ratings: Ratings, fraction: float, seed: int) -> np.ndarray:
    """Which ratings are held out for validation: a seeded hash of each (user, movie) pair below ``fraction``, so a
    rating is held out or not whichever process holds it. Hashed ``HASH_CHUNK`` ratings at a time."""
    held = np.empty(len(ratings), bool)
    for start in range(0, len(ratings), HASH_CHUNK):
        users, items = ratings.users[start : start + HASH_CHUNK], ratings.items[start : start + HASH_CHUNK]
        keys = users.astype(np.uint64) * np.uint64(ratings.n_items) + items.astype(np.uint64)
        held[start : start + HASH_CHUNK] = stable_uniform(keys, seed) < fraction
    return held


def held_out(ratings: Ratings, fraction: float, seed: int) -> Split:
    """``ratings`` less their validation ratings, and those (``validation_mask``: the same at any world size)."""
    held = validation_mask(ratings, fraction, seed)
    return Split(ratings.take(np.flatnonzero(~held)), ratings.take(np.flatnonzero(held)))


def stable_uniform(keys: np.ndarray, seed: int) -> np.ndarray:
    """A uniform number in [0, 1) per unsigned 64-bit key, a pure function of the key and ``seed`` (splitmix64)."""
    z = keys.astype(np.uint64)  # a copy, mixed in place
    z += np.uint64(0x9E3779B97F4A7C15 * (seed + 1) % (1 << 64))  # wraps, as unsigned
    for shift, multiplier in ((30, 0xBF58476D1CE4E5B9), (27, 0x94D049BB133111EB)):
        z ^= z >> np.uint64(shift)
        z *= np.uint64(multiplier)
    z ^= z >> np.uint64(31)
    z >>= np.uint64(11)
    return z.astype(np.float64) * 2.0**-53


def _write_ratings(ratings: Ratings, path: Path) -> None:
    table = pa.table(
        {"user": ratings.users, "item": ratings.items, "rating": ratings.ratings, "timestamp": ratings.timestamps}
    )
    pq.write_table(table, path, compression="lz4")


def _concat(parts: list[Ratings]) -> Ratings:
    first = parts[0]
    return Ratings(
        np.concatenate([p.users for p in parts]),
        np.concatenate([p.items for p in parts]),
        np.concatenate([p.ratings for p in parts]),
        np.concatenate([p.timestamps for p in parts]),
        first.user_vocab,
        first.item_vocab,
    )
