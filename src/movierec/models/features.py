"""Movie features for the hybrid model, as one sparse movie x feature matrix.

Three groups of features, each read from the dataset and each optional:
- genres: multi-hot over the movies table's ``genres`` ("A|B"), weights ``1/sqrt(n genres)``;
- release year: one decade bucket per movie (years before 1940 share one bucket), weight 1;
- tags: the most widely used user tags (lower-cased), counted per movie and L2-normalised per movie.

A movie with none of them (no movies file, an unknown year, no tags) has an empty row; the hybrid then
knows it only from its ratings. The matrix is kept in CSR form (``indptr``, ``indices``, ``weights``), the
shape ``torch.nn.functional.embedding_bag`` consumes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from movierec.data.ratings import Dataset

NO_GENRE = "(no genres listed)"
YEAR_WIDTH = 10
FIRST_YEAR = 1940  # earlier films are few; they share one bucket
MAX_TAGS = 300
MIN_TAG_MOVIES = 2  # a tag on a single movie says nothing about any other movie


@dataclass(frozen=True)
class ItemFeatures:
    """A sparse ``[n_items, n_features]`` matrix in CSR form, with one name per feature column."""

    indptr: np.ndarray  # int64 [n_items + 1]
    indices: np.ndarray  # int64 [nnz] feature column
    weights: np.ndarray  # float32 [nnz]
    names: list[str] = field(default_factory=list)

    @property
    def n_items(self) -> int:
        return int(self.indptr.shape[0] - 1)

    @property
    def n_features(self) -> int:
        return len(self.names)

    def has_features(self) -> np.ndarray:
        """Which movies have at least one feature: ``bool [n_items]``."""
        return np.diff(self.indptr) > 0

    def dense(self) -> np.ndarray:
        """The matrix as a dense float32 array (for tests and small data)."""
        out = np.zeros((self.n_items, self.n_features), np.float32)
        rows = np.repeat(np.arange(self.n_items), np.diff(self.indptr))
        out[rows, self.indices] = self.weights
        return out

    def group(self, prefix: str) -> list[str]:
        """The feature names of one group: ``genre``, ``year`` or ``tag``."""
        return [name for name in self.names if name.startswith(f"{prefix}:")]


def build_item_features(
    dataset: Dataset,
    n_items: int,
    *,
    genres: bool = True,
    years: bool = True,
    tags: bool = True,
    max_tags: int | None = None,
) -> ItemFeatures:
    """The feature matrix of the dataset's movies (item index order) from the groups asked for."""
    movies = dataset.movies
    if len(movies) != n_items:
        raise ValueError(f"the movies table has {len(movies)} rows but there are {n_items} movies")
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]] = []
    if genres:
        parts.append(_genre_part(movies["genres"].tolist()))
    if years:
        parts.append(_year_part(movies["year"]))
    if tags and dataset.tags is not None and len(dataset.tags):
        item_index = dataset.item_vocab.index_many(dataset.tags["movieId"].to_numpy(np.int64))
        parts.append(_tag_part(item_index, dataset.tags["tag"], n_items, MAX_TAGS if max_tags is None else max_tags))
    return _combine(parts, n_items)


def _genre_part(genre_strings: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    lists = [[g for g in str(text).split("|") if g and g != NO_GENRE] for text in genre_strings]
    names = sorted({g for genres in lists for g in genres})
    column = {name: i for i, name in enumerate(names)}
    rows = np.repeat(np.arange(len(lists)), [len(g) for g in lists])
    cols = np.array([column[g] for genres in lists for g in genres], dtype=np.int64)
    counts = np.array([len(g) for g in lists], dtype=np.float64)
    weights = 1.0 / np.sqrt(counts[rows]) if rows.size else np.empty(0)
    return rows, cols, weights, [f"genre:{name}" for name in names]


def _year_part(years: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    values = pd.array(years, dtype="Int64")
    known = ~np.asarray(values.isna(), dtype=bool)
    rows = np.flatnonzero(known)
    start = np.asarray(values[known], dtype=np.int64)
    start = np.maximum((start // YEAR_WIDTH) * YEAR_WIDTH, FIRST_YEAR - YEAR_WIDTH)
    buckets, cols = np.unique(start, return_inverse=True)
    names = [f"year:<{FIRST_YEAR}" if b < FIRST_YEAR else f"year:{b}-{b + YEAR_WIDTH - 1}" for b in buckets.tolist()]
    return rows, cols.astype(np.int64), np.ones(rows.size), names


def _tag_part(
    item_index: np.ndarray, tag_text: pd.Series, n_items: int, max_tags: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """The ``max_tags`` tags on the most movies (at least two each), counted per movie, L2-normalised."""
    frame = pd.DataFrame({"item": item_index, "tag": tag_text.astype(str).str.strip().str.lower()})
    frame = frame[(frame["item"] >= 0) & (frame["item"] < n_items) & (frame["tag"] != "")]
    counts = frame.groupby(["item", "tag"]).size().rename("count").reset_index()
    spread = counts.groupby("tag").size()
    spread = spread[spread >= MIN_TAG_MOVIES]
    kept = spread.sort_values(ascending=False, kind="stable").head(max_tags)
    names = sorted(kept.index.tolist())
    counts = counts[counts["tag"].isin(kept.index)]
    column = {name: i for i, name in enumerate(names)}
    rows = counts["item"].to_numpy(np.int64)
    cols = counts["tag"].map(column).to_numpy(np.int64)
    weights = counts["count"].to_numpy(np.float64)
    norms = np.sqrt(np.bincount(rows, weights * weights, minlength=n_items))
    return rows, cols, weights / norms[rows] if rows.size else weights, [f"tag:{name}" for name in names]


def _combine(parts: list[tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]], n_items: int) -> ItemFeatures:
    """Stack the groups side by side and sort the entries into CSR order."""
    rows_list: list[np.ndarray] = []
    cols_list: list[np.ndarray] = []
    weights_list: list[np.ndarray] = []
    names: list[str] = []
    for rows, cols, weights, part_names in parts:
        rows_list.append(np.asarray(rows, np.int64))
        cols_list.append(np.asarray(cols, np.int64) + len(names))
        weights_list.append(np.asarray(weights, np.float64))
        names.extend(part_names)
    rows = np.concatenate(rows_list) if rows_list else np.empty(0, np.int64)
    cols = np.concatenate(cols_list) if cols_list else np.empty(0, np.int64)
    weights = np.concatenate(weights_list) if weights_list else np.empty(0)
    order = np.lexsort((cols, rows))
    indptr = np.zeros(n_items + 1, np.int64)
    np.cumsum(np.bincount(rows, minlength=n_items), out=indptr[1:])
    return ItemFeatures(indptr, cols[order], weights[order].astype(np.float32), names)
