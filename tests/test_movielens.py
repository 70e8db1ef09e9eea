"""Parsers for every MovieLens format produce the same tables, and bad files give exact errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from movierec.data.loader import load_dataset
from movierec.data.movielens import (
    ParseOptions,
    normalise_genres,
    parse_year,
    read_ratings_csv,
    read_source,
)
from movierec.data.ratings import RatingScale
from movierec.errors import DataError

from conftest import write

STRICT = ParseOptions(scale=RatingScale(0.5, 5.0, 0.5))


def csv_release(root: Path) -> Path:
    write(
        root / "ratings.csv",
        "userId,movieId,rating,timestamp\r\n1,10,4.0,100\r\n1,20,3.5,200\r\n2,10,5.0,300\r\n",
    )
    write(
        root / "movies.csv",
        'movieId,title,genres\n10,"Heat, the Remake (1995)",Action|Crime\n20,Toy Story (1995),'
        "Animation|Children's\n30,Moonlight,(no genres listed)\n",
    )
    write(root / "tags.csv", "userId,movieId,tag,timestamp\n1,10,Gritty ,5\n")
    return root


def dat_release(root: Path) -> Path:
    write(root / "ratings.dat", "1::10::4::100\n1::20::3::200\n2::10::5::300\n")
    write(root / "movies.dat", "10::Heat (1995)::Action|Crime\n20::Amélie (2001)::Comedy|Romance\n", "latin-1")
    return root


def ml100k_release(root: Path) -> Path:
    write(root / "u.data", "1\t10\t4\t100\n1\t20\t3\t200\n2\t10\t5\t300\n")
    flags_heat = ["0"] * 19
    flags_heat[1] = flags_heat[6] = "1"
    flags_toy = ["0"] * 19
    flags_toy[3] = flags_toy[4] = "1"
    write(
        root / "u.item",
        f"10|Heat (1995)|01-Jan-1995||http://x|{'|'.join(flags_heat)}\n"
        f"20|Café Society (1995)|01-Jan-1995||http://x|{'|'.join(flags_toy)}\n",
        "latin-1",
    )
    return root


@pytest.mark.parametrize("make", [csv_release, dat_release, ml100k_release])
def test_every_format_gives_the_same_tables(tmp_path: Path, make) -> None:
    raw = read_source(make(tmp_path), STRICT)
    assert raw.ratings.columns.tolist() == ["userId", "movieId", "rating", "timestamp"]
    assert raw.ratings["userId"].tolist() == [1, 1, 2]
    assert raw.ratings["movieId"].tolist() == [10, 20, 10]
    assert raw.ratings["rating"].dtype == np.float32
    assert raw.ratings["timestamp"].tolist() == [100, 200, 300]
    assert raw.movies is not None
    assert raw.movies.columns.tolist() == ["movieId", "title", "year", "genres"]
    heat = raw.movies.set_index("movieId").loc[10]
    assert heat["year"] == 1995
    assert heat["genres"] == "Action|Crime"


def test_latin1_titles_decode(tmp_path: Path) -> None:
    raw = read_source(dat_release(tmp_path), STRICT)
    assert raw.movies is not None
    assert "Amélie (2001)" in raw.movies["title"].tolist()


def test_100k_genre_flags_become_names(tmp_path: Path) -> None:
    raw = read_source(ml100k_release(tmp_path), STRICT)
    assert raw.movies is not None
    assert raw.movies.set_index("movieId").loc[20, "genres"] == "Animation|Children"
    assert raw.movies.set_index("movieId").loc[20, "title"] == "Café Society (1995)"


def test_csv_release_details(tmp_path: Path) -> None:
    raw = read_source(csv_release(tmp_path), STRICT)
    assert raw.movies is not None
    movies = raw.movies.set_index("movieId")
    assert movies.loc[10, "title"] == "Heat, the Remake (1995)"
    assert movies.loc[20, "genres"] == "Animation|Children"
    assert movies.loc[30, "genres"] == ""
    assert pd.isna(movies.loc[30, "year"])
    assert raw.tags is not None and raw.tags["tag"].tolist() == ["gritty"]


def test_user_csv_without_timestamp(tmp_path: Path) -> None:
    path = write(tmp_path / "mine.csv", "userId,movieId,rating\n7,1,3\n7,2,4.5\n")
    frame, _ = read_ratings_csv(path, STRICT)
    assert frame["timestamp"].tolist() == [0, 0]
    assert frame["rating"].tolist() == [3.0, 4.5]


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ("1,10,4.0,100\n1,20,3.5\n", "line 3: expected 4 columns"),
        ("1,10,4.0,100\nabc,20,3.5,100\n", "line 3: userId 'abc' is not an integer"),
        ("1,10,4.0,100\n1,20,nan,100\n", "line 3: rating 'nan' is not a finite number"),
        ("1,10,4.0,100\n1,20,seven,100\n", "line 3: rating 'seven' is not a number"),
        ("1,10,4.0,100\n1,20,7.0,100\n", "line 3: rating 7.0 is outside the scale 0.5 to 5"),
        ("1,10,4.0,100\n1,10,3.0,100\n", "line 3: user 1 rates movie 10 more than once"),
    ],
)
def test_bad_rows_name_file_line_and_value(tmp_path: Path, body: str, fragment: str) -> None:
    path = write(tmp_path / "ratings.csv", "userId,movieId,rating,timestamp\n" + body)
    with pytest.raises(DataError) as error:
        read_ratings_csv(path, STRICT)
    assert fragment in str(error.value)
    assert str(path) in str(error.value)


def test_skip_invalid_reports_reasons(tmp_path: Path) -> None:
    body = "1,10,4.0,100\n1,20,7.0,100\nx,1,1,1\n2,2,2,2,2\n\n3,3,3.0,3\n"
    path = write(tmp_path / "ratings.csv", "userId,movieId,rating,timestamp\n" + body)
    frame, report = read_ratings_csv(path, ParseOptions(scale=STRICT.scale, skip_invalid=True))
    assert frame["userId"].tolist() == [1, 3]
    assert report.n_skipped == 4
    assert report.skipped["ratings outside the scale"] == 1
    assert "skipped 4 rows" in report.summary()


@pytest.mark.parametrize(("policy", "expected"), [("last", 2.0), ("mean", 3.0)])
def test_duplicate_policies(tmp_path: Path, policy: str, expected: float) -> None:
    path = write(tmp_path / "r.csv", "userId,movieId,rating,timestamp\n1,10,4.0,1\n1,10,2.0,2\n2,10,1.0,3\n")
    frame, report = read_ratings_csv(path, ParseOptions(duplicates=policy))  # type: ignore[arg-type]
    assert len(frame) == 2
    assert float(frame[frame["userId"] == 1]["rating"].iloc[0]) == expected
    assert report.duplicates_merged == 1


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b"", "is empty"),
        (b"1,10,4.0,100\n", "the header is '1,10,4.0,100'"),
        (b"userId,movieId,rating\n1,10,4.0\n2,\xff\xfe,3\n", "line 3: the bytes are not valid UTF-8"),
        (b"userId,movieId,rating\n", "holds no ratings"),
    ],
)
def test_bad_files(tmp_path: Path, content: bytes, fragment: str) -> None:
    path = tmp_path / "ratings.csv"
    path.write_bytes(content)
    with pytest.raises(DataError, match=fragment.replace("(", r"\(")):
        read_ratings_csv(path, STRICT)


@pytest.mark.parametrize(
    ("title", "year"),
    [
        ("Toy Story (1995)", 1995),
        ("Babylon 5", None),
        ("Fawlty Towers (1975-1979)", 1975),
        ("(500) Days (2009) ", 2009),
    ],
)
def test_parse_year(title: str, year: int | None) -> None:
    assert parse_year(title) == year


def test_normalise_genres() -> None:
    assert normalise_genres("Animation|Children's") == "Animation|Children"
    assert normalise_genres("(no genres listed)") == ""
    assert normalise_genres(None) == ""


def test_dataset_indexes_and_caches(tmp_path: Path) -> None:
    folder = csv_release(tmp_path / "rel")
    first = load_dataset(folder)
    second = load_dataset(folder)
    assert len(first.movies) == 3  # the unrated movie 30 is in the catalog
    assert first.item_vocab.ids.tolist() == [10, 20, 30]
    assert first.ratings.users.dtype == np.int32 and first.ratings.items.dtype == np.int32
    np.testing.assert_array_equal(first.ratings.items, second.ratings.items)
    assert second.movies["title"].tolist() == first.movies["title"].tolist()
    assert first.scale == RatingScale(3.5, 5.0, 0.5)
