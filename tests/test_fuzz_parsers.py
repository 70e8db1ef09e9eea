"""Property-based fuzzing of the MovieLens parsers.

Random malformed input (random bytes, CSV-ish text with wrong columns, odd numbers, quotes, BOMs, CRLF, blank
lines, other encodings) may only end in a clean table or the project's own ``MovieRecError``.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from movierec.data.movielens import (
    ParseOptions,
    ParseReport,
    read_movies_csv,
    read_movies_dat,
    read_ratings_csv,
    read_ratings_dat,
    read_source,
)
from movierec.data.ratings import RatingScale
from movierec.errors import MovieRecError

EXAMPLES = int(os.environ.get("MOVIEREC_FUZZ_EXAMPLES", "120"))  # raise it for a deeper hunt
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])

SCALE = RatingScale(0.5, 5.0, 0.5)
OPTIONS = st.builds(
    ParseOptions,
    duplicates=st.sampled_from(["error", "last", "mean"]),
    skip_invalid=st.booleans(),
    scale=st.sampled_from([None, SCALE, RatingScale(1.0, 5.0, 1.0)]),
)

# ---------------------------------------------------------------------------------------- content strategies

NUMBERS = st.one_of(
    st.integers(min_value=-5, max_value=40).map(str),
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.sampled_from(["2147483648", "4294967296", "9223372036854775807", "9223372036854775808", "-0", "+3", "0x1f"]),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["nan", "NaN", "inf", "-inf", "Infinity", "1e39", "-1e39", "1e-50", "4.", ".5", "3.5e0", "1_0"]),
)
CELLS = st.one_of(
    NUMBERS,
    NUMBERS,
    st.sampled_from(["", " ", '"', '""', '"4"', '"1,2"', '"a\nb"', "\t", "NULL", "N/A", "\ufeff1", "١٢", "\x00"]),
    st.text(max_size=6),
)
HEADERS = st.one_of(
    st.just("userId,movieId,rating,timestamp"),
    st.just("userId,movieId,rating"),
    st.just("\ufeffuserId,movieId,rating,timestamp"),
    st.just(" userId , movieId , rating "),
    st.just("userId,movieId,rating,rating"),
    st.just("movieId,userId,timestamp,rating"),
    st.just('"userId","movieId","rating"'),
    st.just("userId;movieId;rating"),
    st.just(""),
    st.lists(st.sampled_from(["userId", "movieId", "rating", "timestamp", "title", "x", ""]), max_size=5).map(",".join),
)
NEWLINES = st.sampled_from(["\n", "\r\n", "\r"])
ENCODINGS = st.sampled_from(["utf-8", "utf-8", "latin-1", "utf-16", "cp1252"])


@st.composite
def delimited_text(draw: st.DrawFn, delimiter: str, header: bool) -> bytes:
    """Rows of random cells (mostly 3 or 4 of them) joined by ``delimiter``, maybe under a header."""
    width = draw(st.sampled_from([3, 4, 4, 4, 2, 5]))
    rows = draw(
        st.lists(
            st.one_of(
                st.lists(CELLS, min_size=width, max_size=width),
                st.lists(CELLS, max_size=6),
                st.just([]),
            ),
            max_size=12,
        )
    )
    newline = draw(NEWLINES)
    lines = [delimiter.join(row) for row in rows]
    if header:
        lines.insert(0, draw(HEADERS).replace(",", delimiter) if delimiter != "," else draw(HEADERS))
    text = newline.join(lines) + draw(st.sampled_from(["", newline, newline * 2]))
    encoding = draw(ENCODINGS)
    return text.encode(encoding, errors="replace")


@st.composite
def near_valid_ratings(draw: st.DrawFn, delimiter: str, header: bool) -> bytes:
    """Well-formed ratings with a few random corruptions spliced in: the near misses parsers meet in practice."""
    n = draw(st.integers(min_value=1, max_value=15))
    ids = st.one_of(st.integers(0, 30), st.integers(0, 2**40))
    users = draw(st.lists(ids, min_size=n, max_size=n))
    items = draw(st.lists(ids, min_size=n, max_size=n))
    stars = draw(st.lists(st.sampled_from(["0.5", "1", "2.5", "4.0", "5", "5.0"]), min_size=n, max_size=n))
    rows = zip(users, items, stars, strict=True)
    lines = [delimiter.join([str(u), str(i), r, str(1000 + k)]) for k, (u, i, r) in enumerate(rows)]
    for _ in range(draw(st.integers(0, 2))):
        at = draw(st.integers(0, len(lines)))
        lines.insert(at, delimiter.join(draw(st.lists(CELLS, min_size=1, max_size=5))))
    head = ["userId,movieId,rating,timestamp"] if header else []
    return (draw(NEWLINES).join(head + lines) + "\n").encode()


def ratings_content(delimiter: str, header: bool) -> st.SearchStrategy[bytes]:
    return st.one_of(
        st.binary(max_size=300),
        delimited_text(delimiter, header=header),
        near_valid_ratings(delimiter, header=header),
    )


# ------------------------------------------------------------------------------------------------ checks


def outcome(parse: Callable[[], Any], *, fuzzing: bool = True) -> Any:
    """The parser's result, or None when it refused the input with the project's own error."""
    try:
        result = parse()
    except MovieRecError as error:
        assert str(error).strip(), "a MovieRecError must explain itself"
        if fuzzing:
            event("refused")
        return None
    if fuzzing:
        event("parsed")
    return result


def check_ratings(frame: pd.DataFrame, report: ParseReport, options: ParseOptions) -> None:
    assert frame.columns.tolist() == ["userId", "movieId", "rating", "timestamp"]
    assert frame["userId"].dtype == np.int64
    assert frame["movieId"].dtype == np.int64
    assert frame["rating"].dtype == np.float32
    assert frame["timestamp"].dtype == np.int64
    assert len(frame) > 0
    ratings = frame["rating"].to_numpy()
    assert np.isfinite(ratings).all()
    if options.scale is not None:
        assert (ratings >= np.float32(options.scale.low)).all() and (ratings <= np.float32(options.scale.high)).all()
    assert (frame["userId"] >= 0).all() and (frame["movieId"] >= 0).all()
    assert not frame.duplicated(["userId", "movieId"]).any(), "duplicate pairs survived the duplicate policy"
    assert frame.index.tolist() == list(range(len(frame)))
    assert report.n_skipped >= 0 and report.duplicates_merged >= 0
    if not options.skip_invalid:
        assert report.n_skipped == 0


def check_movies(frame: pd.DataFrame) -> None:
    assert frame.columns.tolist() == ["movieId", "title", "year", "genres"]
    assert frame["movieId"].dtype == np.int64
    assert str(frame["year"].dtype) == "Int64"
    for column in ("title", "genres"):
        values = frame[column].tolist()
        assert all(isinstance(v, str) for v in values), f"{column} holds non-strings: {values!r}"
        assert "<NA>" not in values and "nan" not in values


SCRATCH = tempfile.TemporaryDirectory(prefix="movierec-fuzz-")
"""One folder for every example's files, removed when the test process ends (one per example would pile up)."""


def in_file(name: str, content: bytes) -> Path:
    folder = Path(tempfile.mkdtemp(dir=SCRATCH.name))
    path = folder / name
    path.write_bytes(content)
    return path


# ------------------------------------------------------------------------------------------------- tests


@FUZZ
@given(content=ratings_content(",", header=True), options=OPTIONS)
def test_ratings_csv_is_clean_or_refused(content: bytes, options: ParseOptions) -> None:
    path = in_file("ratings.csv", content)
    result = outcome(lambda: read_ratings_csv(path, options))
    if result is not None:
        check_ratings(*result, options)


@FUZZ
@given(content=ratings_content("::", header=False), options=OPTIONS)
def test_ratings_dat_is_clean_or_refused(content: bytes, options: ParseOptions) -> None:
    path = in_file("ratings.dat", content)
    result = outcome(lambda: read_ratings_dat(path, options))
    if result is not None:
        check_ratings(*result, options)


RELEASE_FILES = {
    "csv": ("ratings.csv", ratings_content(",", header=True), "movies.csv", "tags.csv"),
    "dat": ("ratings.dat", ratings_content("::", header=False), "movies.dat", "tags.dat"),
    "100k": ("u.data", ratings_content("\t", header=False), "u.item", None),
}


@FUZZ
@given(
    layout=st.sampled_from(sorted(RELEASE_FILES)),
    data=st.data(),
    options=OPTIONS,
)
def test_release_folders_are_clean_or_refused(layout: str, data: st.DataObject, options: ParseOptions) -> None:
    ratings_name, ratings_strategy, movies_name, tags_name = RELEASE_FILES[layout]
    folder = Path(tempfile.mkdtemp(dir=SCRATCH.name))
    (folder / ratings_name).write_bytes(data.draw(ratings_strategy))
    separator = {"csv": ",", "dat": "::", "100k": "|"}[layout]
    side = st.one_of(st.binary(max_size=200), delimited_text(separator, header=layout == "csv"))
    if data.draw(st.booleans()):
        (folder / movies_name).write_bytes(data.draw(side))
    if tags_name is not None and data.draw(st.booleans()):
        (folder / tags_name).write_bytes(data.draw(side))
    raw = outcome(lambda: read_source(folder, options))
    if raw is None:
        return
    check_ratings(raw.ratings, raw.report, options)
    if raw.movies is not None:
        check_movies(raw.movies)
    if raw.tags is not None:
        assert raw.tags.columns.tolist() == ["userId", "movieId", "tag", "timestamp"]
        assert raw.tags["movieId"].dtype == np.int64 and raw.tags["userId"].dtype == np.int64


MOVIES_CSV = st.one_of(
    st.binary(max_size=300),
    delimited_text(",", header=False).map(lambda body: b"movieId,title,genres\n" + body),
    st.lists(
        st.tuples(NUMBERS, st.text(max_size=12), st.sampled_from(["", "Drama", "A|B", "(no genres listed)", '"'])),
        max_size=8,
    ).map(lambda rows: ("movieId,title,genres\n" + "\n".join(",".join(r) for r in rows)).encode()),
)


@FUZZ
@given(content=MOVIES_CSV)
def test_movies_csv_is_clean_or_refused(content: bytes) -> None:
    path = in_file("movies.csv", content)
    movies = outcome(lambda: read_movies_csv(path))
    if movies is not None:
        check_movies(movies)


@FUZZ
@given(content=st.one_of(st.binary(max_size=200), delimited_text("::", header=False)))
def test_movies_dat_is_clean_or_refused(content: bytes) -> None:
    path = in_file("movies.dat", content)
    movies = outcome(lambda: read_movies_dat(path))
    if movies is not None:
        check_movies(movies)


# ------------------------------------------------------------------------------ cases the fuzzer once found


def test_an_oversized_quoted_field_is_a_data_error() -> None:
    path = in_file("ratings.csv", b'userId,movieId,rating\n1,10,"4\n' + b"x" * 200_000 + b"\n")
    assert outcome(lambda: read_ratings_csv(path, ParseOptions(scale=SCALE)), fuzzing=False) is None


def test_ids_beyond_int64_are_a_data_error() -> None:
    path = in_file("ratings.csv", b"userId,movieId,rating\n1,10,4\n99999999999999999999,2,3\n")
    try:
        read_ratings_csv(path, ParseOptions(scale=SCALE))
    except MovieRecError as error:
        assert "line 3" in str(error) and "99999999999999999999" in str(error)
    else:
        raise AssertionError("an id beyond int64 was accepted")


def test_large_ids_are_not_mistaken_for_duplicates() -> None:
    path = in_file("ratings.csv", b"userId,movieId,rating\n0,4294967296,4\n1,0,3\n2147483648,1,2\n0,1,2\n")
    frame, _ = read_ratings_csv(path, ParseOptions(scale=SCALE))
    assert frame["movieId"].tolist() == [4294967296, 0, 1, 1]


def test_a_rating_beyond_float32_is_refused_even_without_a_scale() -> None:
    path = in_file("ratings.csv", b"userId,movieId,rating\n1,10,1e39\n")
    assert outcome(lambda: read_ratings_csv(path, ParseOptions()), fuzzing=False) is None


def test_header_with_spaces_or_repeated_columns() -> None:
    spaced = in_file("ratings.csv", b" userId , movieId , rating \n1,10,4\n")
    frame, _ = read_ratings_csv(spaced, ParseOptions(scale=SCALE))
    assert frame["rating"].tolist() == [4.0]
    repeated = in_file("ratings.csv", b"userId,movieId,rating,rating\n1,10,4,4\n")
    assert outcome(lambda: read_ratings_csv(repeated, ParseOptions(scale=SCALE)), fuzzing=False) is None


def test_missing_genres_are_empty_not_na() -> None:
    path = in_file("movies.csv", b"movieId,title,genres\n1,A (1999),\n2,B,Drama\n")
    movies = read_movies_csv(path)
    check_movies(movies)
    assert movies["genres"].tolist() == ["", "Drama"]
