"""The registry of MovieLens releases that movierec knows how to fetch and read."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from movierec.errors import MovieRecError

GROUPLENS_BASE_URL = "https://files.grouplens.org/datasets/movielens"

ReleaseFormat = Literal["csv", "dat", "100k"]

_RATINGS_FILES: dict[str, str] = {"csv": "ratings.csv", "dat": "ratings.dat", "100k": "u.data"}


@dataclass(frozen=True)
class Release:
    """One MovieLens release: where to get it, how to check it and how its files are laid out."""

    name: str
    url: str
    md5_url: str
    format: ReleaseFormat
    folder: str  # the top folder inside the zip
    md5: str | None  # known checksum of the zip; None means "use the published .md5 file"
    n_ratings: int
    description: str

    @property
    def zip_name(self) -> str:
        """The zip's file name, e.g. ``ml-25m.zip``."""
        return self.url.rsplit("/", 1)[-1]

    @property
    def ratings_file(self) -> str:
        """The ratings file's name inside the dataset folder."""
        return _RATINGS_FILES[self.format]


def _release(name: str, fmt: ReleaseFormat, folder: str, md5: str | None, n_ratings: int, description: str) -> Release:
    url = f"{GROUPLENS_BASE_URL}/{name}.zip"
    return Release(name, url, url + ".md5", fmt, folder, md5, n_ratings, description)


RELEASES: dict[str, Release] = {
    r.name: r
    for r in (
        _release(
            "ml-latest-small",
            "csv",
            "ml-latest-small",
            None,
            100_836,
            "100k ratings and 3.6k tags of 9.7k movies by 610 users; small, for education (embedded).",
        ),
        _release(
            "ml-100k",
            "100k",
            "ml-100k",
            "0e33842e24a9c977be4e0107933c0723",
            100_000,
            "100k ratings of 1.7k movies by 943 users with demographics (1998).",
        ),
        _release(
            "ml-1m",
            "dat",
            "ml-1m",
            "c4d9eecfca2ab87c1945afe126590906",
            1_000_209,
            "1M ratings of 3.9k movies by 6k users with demographics (2003).",
        ),
        _release(
            "ml-10m",
            "dat",
            "ml-10M100K",
            "ce571fd55effeba0271552578f2648bd",
            10_000_054,
            "10M ratings and 100k tags of 10.7k movies by 72k users (2009).",
        ),
        _release(
            "ml-20m",
            "csv",
            "ml-20m",
            "cd245b17a1ae2cc31bb14903e1204af3",
            20_000_263,
            "20M ratings and 465k tags of 27k movies by 138k users (2015).",
        ),
        _release(
            "ml-25m",
            "csv",
            "ml-25m",
            "6b51fb2759a8657d3bfcbfc42b592ada",
            25_000_095,
            "25M ratings and 1M tags of 62k movies by 162k users (2019).",
        ),
        _release(
            "ml-32m",
            "csv",
            "ml-32m",
            None,
            32_000_204,
            "32M ratings and 2M tags of 87k movies by 200k users (2024).",
        ),
    )
}


def get_release(name: str) -> Release:
    """The release called ``name``; a ``MovieRecError`` listing the valid names if there is none."""
    try:
        return RELEASES[name]
    except KeyError:
        valid = ", ".join(RELEASES)
        raise MovieRecError(f"Unknown release {name!r}; valid names are: {valid}.") from None
