"""Parsers for every MovieLens file format, all producing the same tables.

- CSV releases (ml-latest-small, 20M, 25M, 32M): ratings.csv, movies.csv, tags.csv, links.csv.
- ``::``-separated .dat releases (1M, 10M): ratings.dat, movies.dat (latin-1 in 1M), tags.dat.
- ML-100K: u.data (tab-separated), u.item (pipe-separated, latin-1, 19 genre flags).
- A user's own CSV with header ``userId,movieId,rating[,timestamp]``.

Ratings come out as a frame ``userId int64, movieId int64, rating float32, timestamp int64``; movies as
``movieId int64, title str, year Int64, genres str`` ("A|B", "" when none); tags as
``userId, movieId, tag, timestamp``.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from movierec.data.ratings import RatingScale
from movierec.errors import DataError

Format = Literal["csv", "dat", "100k", "user-csv"]
DuplicatePolicy = Literal["error", "last", "mean"]
DUPLICATE_POLICIES: tuple[str, ...] = ("error", "last", "mean")

RATING_COLUMNS = ("userId", "movieId", "rating", "timestamp")
ML100K_GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children", "Comedy", "Crime", "Documentary", "Drama",
    "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western",
)  # fmt: skip
NO_GENRES = {"(no genres listed)", "unknown", ""}
_YEAR_AT_END = re.compile(r"\((\d{4})(?:[-–]\d{0,4})?\)\s*$")
INT64_MAX = int(np.iinfo(np.int64).max)
FLOAT32_MAX = float(np.finfo(np.float32).max)


@dataclass
class ParseReport:
    """What was skipped with ``skip_invalid``, counted by reason."""

    skipped: Counter[str] = field(default_factory=Counter)
    duplicates_merged: int = 0

    @property
    def n_skipped(self) -> int:
        return sum(self.skipped.values())

    def summary(self) -> str:
        if not self.skipped and not self.duplicates_merged:
            return "no rows skipped"
        reasons = sorted(self.skipped.items(), key=lambda item: (-item[1], item[0]))
        parts = [f"skipped {self.n_skipped} rows: " + ", ".join(f"{n} {reason}" for reason, n in reasons)]
        if self.duplicates_merged:
            parts.append(f"merged {self.duplicates_merged} duplicate ratings")
        return "; ".join(parts[int(not self.skipped) :])


@dataclass
class RawTables:
    """The tables of one MovieLens source, before indexing."""

    ratings: pd.DataFrame
    movies: pd.DataFrame | None = None
    tags: pd.DataFrame | None = None
    report: ParseReport = field(default_factory=ParseReport)


@dataclass(frozen=True)
class ParseOptions:
    """How strictly to read ratings."""

    duplicates: DuplicatePolicy = "error"
    skip_invalid: bool = False
    scale: RatingScale | None = None  # declared scale; ratings outside it are invalid


# ------------------------------------------------------------------------------------ format detection


def detect_format(path: Path) -> Format:
    """Which MovieLens layout ``path`` holds (a release folder or a user's ratings CSV)."""
    if path.is_file():
        return "user-csv"
    if (path / "ratings.csv").is_file():
        return "csv"
    if (path / "ratings.dat").is_file():
        return "dat"
    if (path / "u.data").is_file():
        return "100k"
    raise DataError(f"The folder {path} holds no MovieLens ratings; expected ratings.csv, ratings.dat or u.data in it.")


RATINGS_FILES: dict[Format, str] = {"csv": "ratings.csv", "dat": "ratings.dat", "100k": "u.data"}
"""The file holding the ratings in each release layout (a user's CSV is itself that file)."""


def count_rating_lines(path: Path) -> int:
    """The lines of ratings in a release folder or a user's ratings CSV, without reading them: the lines of its
    ratings file, less a CSV's header (lines that parsing would skip or merge are counted)."""
    fmt = detect_format(path)
    source = path if fmt == "user-csv" else path / RATINGS_FILES[fmt]
    lines, last = 0, b"\n"
    with source.open("rb") as handle:
        while chunk := handle.read(1 << 24):
            lines, last = lines + chunk.count(b"\n"), chunk[-1:]
    lines += last != b"\n"  # a last line without its newline
    return max(lines - (fmt in ("csv", "user-csv")), 0)


def read_source(path: Path, options: ParseOptions | None = None) -> RawTables:
    """Parse a release folder or a user's ratings CSV into raw tables."""
    options = options or ParseOptions()
    fmt = detect_format(path)
    if fmt == "user-csv":
        ratings, report = read_ratings_csv(path, options)
        return RawTables(ratings, report=report)
    if fmt == "csv":
        ratings, report = read_ratings_csv(path / "ratings.csv", options)
        movies = read_movies_csv(path / "movies.csv") if (path / "movies.csv").is_file() else None
        tags = read_tags_csv(path / "tags.csv") if (path / "tags.csv").is_file() else None
        return RawTables(ratings, movies, tags, report)
    if fmt == "dat":
        ratings, report = read_ratings_dat(path / "ratings.dat", options)
        movies = read_movies_dat(path / "movies.dat") if (path / "movies.dat").is_file() else None
        tags = read_tags_dat(path / "tags.dat") if (path / "tags.dat").is_file() else None
        return RawTables(ratings, movies, tags, report)
    ratings, report = read_ratings_100k(path / "u.data", options)
    movies = read_movies_100k(path / "u.item") if (path / "u.item").is_file() else None
    return RawTables(ratings, movies, None, report)


# --------------------------------------------------------------------------------------------- ratings


def read_ratings_csv(path: Path, options: ParseOptions | None = None) -> tuple[pd.DataFrame, ParseReport]:
    """A ratings CSV with header ``userId,movieId,rating[,timestamp]`` (columns in any order)."""
    options = options or ParseOptions()
    header = _read_header(path)
    names = [name.strip() for name in header.split(",")]
    required = ["userId", "movieId", "rating"]
    if not set(required) <= set(names) or not set(names) <= set(RATING_COLUMNS) or len(set(names)) < len(names):
        raise DataError(f"{path}, line 1: the header is {header!r}; expected 'userId,movieId,rating[,timestamp]'.")
    return _read_delimited(path, names, ",", has_header=True, encoding="utf-8", options=options)


def read_ratings_dat(path: Path, options: ParseOptions | None = None) -> tuple[pd.DataFrame, ParseReport]:
    """``userId::movieId::rating::timestamp`` lines (ML-1M, ML-10M), no header."""
    options = options or ParseOptions()
    _require_non_empty(path)
    data = path.read_bytes().replace(b"::", b"\t")
    return _read_delimited(
        path, list(RATING_COLUMNS), "\t", has_header=False, encoding="utf-8", options=options, data=data
    )


def read_ratings_100k(path: Path, options: ParseOptions | None = None) -> tuple[pd.DataFrame, ParseReport]:
    """ML-100K's u.data: ``user item rating timestamp``, tab-separated, no header."""
    options = options or ParseOptions()
    _require_non_empty(path)
    return _read_delimited(path, list(RATING_COLUMNS), "\t", has_header=False, encoding="utf-8", options=options)


def _read_delimited(
    path: Path,
    names: list[str],
    delimiter: str,
    *,
    has_header: bool,
    encoding: str,
    options: ParseOptions,
    data: bytes | None = None,
) -> tuple[pd.DataFrame, ParseReport]:
    """Fast path with pyarrow; any problem sends the file through the line-by-line checker."""
    frame: pd.DataFrame | None = None
    if not options.skip_invalid:
        try:
            frame = _read_fast(path if data is None else data, names, delimiter, has_header)
        except (pa.ArrowException, UnicodeDecodeError):  # the checked reader below names the problem
            frame = None
        if frame is not None and not _all_valid(frame, options.scale):
            frame = None
    report = ParseReport()
    if frame is None:
        frame, report = _read_checked(path, names, delimiter, has_header, encoding, options, data)
    if frame.empty:
        raise DataError(f"{path} holds no ratings; expected at least one line 'userId,movieId,rating'.")
    frame = _apply_duplicate_policy(frame, path, options.duplicates, report, has_header)
    return frame.reset_index(drop=True), report


def _read_fast(source: Path | bytes, names: list[str], delimiter: str, has_header: bool) -> pd.DataFrame:
    types = {"userId": pa.int64(), "movieId": pa.int64(), "rating": pa.float32(), "timestamp": pa.int64()}
    # our own (stripped, checked) column names; pyarrow's reading of the header line could differ from them
    read_options = pacsv.ReadOptions(column_names=names, skip_rows=int(has_header), block_size=1 << 24)
    parse_options = pacsv.ParseOptions(delimiter=delimiter, ignore_empty_lines=False)
    convert_options = pacsv.ConvertOptions(column_types={n: types[n] for n in names}, include_columns=names)
    stream = io.BytesIO(source) if isinstance(source, bytes) else str(source)
    table = pacsv.read_csv(stream, read_options, parse_options, convert_options)
    if table.num_rows and any(table.column(n).null_count for n in names):
        raise pa.ArrowInvalid("null values")
    columns = {}
    for name in names:  # one column at a time, so at most one column is held twice
        columns[name] = table.column(name).to_numpy()
        table = table.drop_columns([name])
    del table
    pa.default_memory_pool().release_unused()
    return _normalise_ratings(pd.DataFrame(columns, copy=False))


def _normalise_ratings(frame: pd.DataFrame) -> pd.DataFrame:
    """The four rating columns with their dtypes (no copy where a column already has its dtype)."""
    n = len(frame)
    columns = {
        "userId": frame["userId"].to_numpy(dtype=np.int64),
        "movieId": frame["movieId"].to_numpy(dtype=np.int64),
        "rating": frame["rating"].to_numpy(dtype=np.float32),
        "timestamp": frame["timestamp"].to_numpy(dtype=np.int64) if "timestamp" in frame else np.zeros(n, np.int64),
    }
    return pd.DataFrame(columns, copy=False)


def _all_valid(frame: pd.DataFrame, scale: RatingScale | None) -> bool:
    ratings = frame["rating"].to_numpy()
    if not np.isfinite(ratings).all():
        return False
    if (frame["userId"].to_numpy() < 0).any() or (frame["movieId"].to_numpy() < 0).any():
        return False
    return scale is None or bool(((ratings >= scale.low) & (ratings <= scale.high)).all())


def _read_checked(
    path: Path,
    names: list[str],
    delimiter: str,
    has_header: bool,
    encoding: str,
    options: ParseOptions,
    data: bytes | None,
) -> tuple[pd.DataFrame, ParseReport]:
    """Line by line: the first bad row raises a DataError naming file, line and value (or is skipped)."""
    raw = path.read_bytes() if data is None else data
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        bad = raw[exc.start : exc.end]
        raise DataError(
            f"{path}, line {line}: the bytes are not valid {encoding.upper()} text (found {bad!r}); "
            "save the file as UTF-8."
        ) from None
    report = ParseReport()
    columns: dict[str, list[float]] = {name: [] for name in names}
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    for record, row in enumerate(_rows(reader, path), start=1):
        line_no = reader.line_num  # the physical line, also after quoted fields that span lines
        if has_header and record == 1:
            continue
        try:
            values = _check_row(row, names, options.scale)
        except ValueError as problem:
            reason, detail = problem.args
            if not options.skip_invalid:
                raise DataError(f"{path}, line {line_no}: {detail}.") from None
            report.skipped[reason] += 1
            continue
        for name, value in zip(names, values, strict=True):
            columns[name].append(value)
    frame = pd.DataFrame({name: np.asarray(values) for name, values in columns.items()})
    if frame.empty:
        return pd.DataFrame({c: pd.Series(dtype="int64") for c in RATING_COLUMNS}), report
    return _normalise_ratings(frame), report


def _rows(reader: Iterator[list[str]], path: Path) -> Iterator[list[str]]:
    """The csv reader's rows; its own errors (a quote that never closes) become a DataError."""
    try:
        yield from reader
    except csv.Error as exc:
        line = getattr(reader, "line_num", "?")
        raise DataError(f"{path}, line {line}: the CSV cannot be read ({exc}); check for an unclosed quote.") from None


def _check_row(row: list[str], names: list[str], scale: RatingScale | None) -> list[float]:
    if not row or row == [""]:
        raise ValueError("empty lines", "the line is empty")
    if len(row) != len(names):
        raise ValueError(
            "rows with a wrong column count",
            f"expected {len(names)} columns ({','.join(names)}), found {len(row)}: {row!r}",
        )
    values: list[float] = []
    for name, cell in zip(names, row, strict=True):
        cell = cell.strip()
        if name == "rating":
            try:
                rating = float(cell)
            except ValueError:
                raise ValueError("non-numeric ratings", f"rating {cell!r} is not a number") from None
            if not math.isfinite(rating):
                raise ValueError("non-finite ratings", f"rating {cell!r} is not a finite number")
            if abs(rating) > FLOAT32_MAX:
                raise ValueError("non-finite ratings", f"rating {cell!r} is too large to be a rating")
            if scale is not None and not scale.contains(rating):
                raise ValueError(
                    "ratings outside the scale",
                    f"rating {cell} is outside the scale {scale.low:g} to {scale.high:g}",
                )
            values.append(rating)
        else:
            try:
                number = int(cell)
            except ValueError:
                raise ValueError(f"non-integer {name}s", f"{name} {cell!r} is not an integer") from None
            if number < 0:
                raise ValueError(f"negative {name}s", f"{name} {cell!r} is negative")
            if number > INT64_MAX:
                raise ValueError(f"too large {name}s", f"{name} {cell!r} is larger than {INT64_MAX}")
            values.append(number)
    return values


def _may_have_duplicates(frame: pd.DataFrame) -> bool:
    """A cheap first check: pack (user, movie) into one int64 key, sort it in place, look for equal neighbours.
    Only when that finds a repeat (or ids are too large to pack) does the exact pandas check run."""
    users = frame["userId"].to_numpy()
    movies = frame["movieId"].to_numpy()
    if users.size < 2:
        return False
    width = int(movies.max()) + 1
    if int(users.max()) >= (np.iinfo(np.int64).max - width) // width:
        return True
    keys = users * np.int64(width) + movies
    keys.sort()
    return bool((keys[1:] == keys[:-1]).any())


def _apply_duplicate_policy(
    frame: pd.DataFrame, path: Path, policy: str, report: ParseReport, has_header: bool
) -> pd.DataFrame:
    if policy not in DUPLICATE_POLICIES:
        raise DataError(f"Unknown duplicate policy {policy!r}; valid policies are: error, last, mean.")
    if not _may_have_duplicates(frame):
        return frame
    pairs = frame[["userId", "movieId"]]
    repeated = pairs.duplicated(keep="first").to_numpy()
    if not repeated.any():
        return frame
    if policy == "error":
        first = int(np.flatnonzero(repeated)[0])
        row = frame.iloc[first]
        line = f", line {first + 1 + int(has_header)}" if not report.n_skipped else ""
        raise DataError(
            f"{path}{line}: user {int(row['userId'])} rates movie {int(row['movieId'])} more than once; "
            "pass --duplicates last or --duplicates mean to merge duplicates."
        )
    n_before = len(frame)
    if policy == "last":
        frame = frame[~pairs.duplicated(keep="last").to_numpy()]
    else:
        frame = (
            frame.groupby(["userId", "movieId"], sort=False, as_index=False)
            .agg(rating=("rating", "mean"), timestamp=("timestamp", "max"))
            .astype({"rating": np.float32})
        )
    report.duplicates_merged += n_before - len(frame)
    return frame


# ---------------------------------------------------------------------------------------------- movies


def read_movies_csv(path: Path) -> pd.DataFrame:
    """movies.csv: ``movieId,title,genres`` with quoted titles."""
    _require_non_empty(path)
    try:
        with np.errstate(invalid="ignore", over="ignore"):  # ids like "inf" are refused below, not warned about
            frame = pd.read_csv(path, dtype={"movieId": "int64", "title": "string", "genres": "string"})
    except (ValueError, OverflowError, UnicodeDecodeError) as exc:
        raise DataError(f"{path} is not a movies CSV with columns movieId,title,genres ({exc}).") from None
    missing = {"movieId", "title"} - set(frame.columns)
    if missing:
        raise DataError(f"{path} lacks the column(s) {sorted(missing)}; expected movieId,title,genres.")
    genres = frame["genres"] if "genres" in frame else pd.Series([""] * len(frame))
    return make_movies(frame["movieId"].to_numpy(), frame["title"].fillna("").tolist(), genres.tolist())


def read_movies_dat(path: Path) -> pd.DataFrame:
    """movies.dat: ``movieId::title::genres``; latin-1 in ML-1M, UTF-8 in ML-10M."""
    _require_non_empty(path)
    text = _decode_any(path.read_bytes())
    ids, titles, genres = [], [], []
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split("::")
        if len(parts) != 3:
            raise DataError(f"{path}, line {line_no}: expected movieId::title::genres, found {line!r}.")
        ids.append(_parse_int(parts[0], path, line_no, "movieId"))
        titles.append(parts[1])
        genres.append(parts[2])
    return make_movies(np.asarray(ids, dtype=np.int64), titles, genres)


def read_movies_100k(path: Path) -> pd.DataFrame:
    """u.item: ``id|title|release date|video date|IMDb URL|19 genre flags``, latin-1."""
    _require_non_empty(path)
    text = path.read_bytes().decode("latin-1")
    ids, titles, genres = [], [], []
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split("|")
        if len(parts) != 5 + len(ML100K_GENRES):
            raise DataError(
                f"{path}, line {line_no}: expected {5 + len(ML100K_GENRES)} '|'-separated fields, found {len(parts)}."
            )
        ids.append(_parse_int(parts[0], path, line_no, "movie id"))
        titles.append(parts[1])
        flags = parts[5:]
        genres.append("|".join(g for g, flag in zip(ML100K_GENRES, flags, strict=True) if flag.strip() == "1"))
    return make_movies(np.asarray(ids, dtype=np.int64), titles, genres)


def make_movies(ids: np.ndarray, titles: Sequence[str], genres: Sequence[str | None]) -> pd.DataFrame:
    """The common movies table: year parsed from the title, genres normalised to ``A|B``."""
    years = [parse_year(t) for t in titles]
    return pd.DataFrame(
        {
            "movieId": np.asarray(ids, dtype=np.int64),
            "title": [t.strip() for t in titles],
            "year": pd.array(years, dtype="Int64"),
            "genres": [normalise_genres(g) for g in genres],
        }
    )


def parse_year(title: str) -> int | None:
    match = _YEAR_AT_END.search(title.strip())
    return int(match.group(1)) if match else None


def normalise_genres(genres: str | None) -> str:
    """``Children's`` becomes ``Children``; "(no genres listed)" and "unknown" become empty."""
    if genres is None or (not isinstance(genres, str) and pd.isna(genres)):  # None, NaN and pandas' NA
        return ""
    names = [g.strip().replace("Children's", "Children") for g in str(genres).split("|")]
    return "|".join(g for g in names if g not in NO_GENRES)


# ------------------------------------------------------------------------------------------------ tags


def read_tags_csv(path: Path) -> pd.DataFrame:
    try:
        frame = pd.read_csv(path, dtype={"tag": "string"}, keep_default_na=False)
    except (ValueError, UnicodeDecodeError) as exc:
        raise DataError(f"{path} is not a tags CSV with columns userId,movieId,tag,timestamp ({exc}).") from None
    return _normalise_tags(frame, path)


def read_tags_dat(path: Path) -> pd.DataFrame:
    text = _decode_any(path.read_bytes())
    rows = [line.split("::", 3) for line in text.splitlines() if line.strip()]
    frame = pd.DataFrame([r for r in rows if len(r) == 4], columns=["userId", "movieId", "tag", "timestamp"])
    return _normalise_tags(frame, path)


def _normalise_tags(frame: pd.DataFrame, path: Path) -> pd.DataFrame:
    if not {"movieId", "tag"} <= set(frame.columns):
        raise DataError(f"{path} lacks movieId or tag columns; expected userId,movieId,tag,timestamp.")
    out = pd.DataFrame(
        {
            "userId": pd.to_numeric(frame.get("userId", 0), errors="coerce").fillna(0).astype("int64"),
            "movieId": pd.to_numeric(frame["movieId"], errors="coerce"),
            "tag": frame["tag"].astype(str).str.strip().str.lower(),
            "timestamp": pd.to_numeric(frame.get("timestamp", 0), errors="coerce").fillna(0).astype("int64"),
        }
    )
    out = out[out["movieId"].notna() & (out["tag"] != "")]
    return out.astype({"movieId": "int64"}).reset_index(drop=True)


# --------------------------------------------------------------------------------------------- helpers


def _read_header(path: Path) -> str:
    _require_non_empty(path)
    with open(path, "rb") as handle:
        first = handle.readline()
    try:
        return first.decode("utf-8").lstrip("\ufeff").strip()
    except UnicodeDecodeError as exc:
        bad = first[exc.start : exc.end]
        raise DataError(
            f"{path}, line 1: the bytes are not valid UTF-8 text (found {bad!r}); save the file as UTF-8."
        ) from None


def _require_non_empty(path: Path) -> None:
    if not path.exists():
        raise DataError(f"The file {path} does not exist.")
    if not path.is_file():
        raise DataError(f"{path} is a folder, not a file; give the path of the file itself.")
    if path.stat().st_size == 0:
        raise DataError(f"The file {path} is empty; expected MovieLens ratings with a header line.")


def _decode_any(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _parse_int(cell: str, path: Path, line_no: int, name: str) -> int:
    try:
        number = int(cell)
    except ValueError:
        raise DataError(f"{path}, line {line_no}: {name} {cell!r} is not an integer.") from None
    if abs(number) > INT64_MAX:
        raise DataError(f"{path}, line {line_no}: {name} {cell!r} is larger than {INT64_MAX}.")
    return number
