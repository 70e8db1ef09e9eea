"""`movierec evaluate RUN_DIR --protocol taste [--json]`: the taste protocol's tables (or its JSON)."""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console
from rich.table import Table

from movierec.cli.console import make_console

REFERENCES = {"ease": "EASE", "popularity": "popularity"}
"""The JSON keys of the reference lists, and their titles (the model's lists are titled by its name)."""


def taste_protocol(run: Any, as_json: bool, **_options: Any) -> None:
    """Build a liker and a swapped user per genre, fold them into the run's model, print the comparison."""
    from movierec.recommend.taste import run_taste

    report = run_taste(run)
    if as_json:
        print(json.dumps(report))
        return
    print_taste(report, make_console())


def print_taste(report: dict[str, Any], console: Console) -> None:
    """The per-genre table, the summary table, the genres left out and the notes."""
    settings = report["settings"]
    titles = {"model": report["model_name"], **REFERENCES}
    names = [key for key in titles if key in report["summary"]]
    length = settings["list_length"]
    table = Table(
        title=(
            f"Taste: in-genre movies in the top {length} of a user who likes the genre (liker) and of one with the "
            "stars swapped (swap), and how many movies the two lists share"
        )
    )
    table.add_column("genre")
    for name in names:
        table.add_column(f"{titles[name]}\nliker · swap · overlap", justify="center")
    for row in report["genres"]:
        cells = []
        for name in names:
            lists = row[name]
            liker = _count(lists["liker_in_genre"], len(lists["liker_list"]))
            swapped = _count(lists["swapped_in_genre"], len(lists["swapped_list"]))
            cells.append(f"{liker} · {swapped} · {lists['overlap']}")
        table.add_row(row["genre"], *cells)
    console.print(table)
    summary = Table(title=f"Taste summary over {len(report['genres'])} genres")
    for column in (
        "",
        "liker in-genre (mean)",
        f"lowest liker (of {length})",
        "swap in-genre (mean)",
        "overlap (mean)",
    ):
        summary.add_column(column, justify="left" if not column else "right")
    for name in names:
        s = report["summary"][name]
        summary.add_row(
            titles[name],
            f"{s['liker_in_genre_mean']:.2f}",
            str(s["liker_lowest_count"]),
            f"{s['swapped_in_genre_mean']:.2f}",
            f"{s['overlap_mean']:.1f}",
        )
    console.print(summary)
    console.print(
        f"Each user rates {settings['profile_size']} well-known movies of the genre (>= "
        f"{settings['profile_min_ratings']} training ratings) {settings['liked_stars']:g}★ and "
        f"{settings['profile_size']} outside it {settings['disliked_stars']:g}★ (the swapped user the other way "
        f"round); lists hold movies with >= {settings['min_ratings']} training ratings."
    )
    for entry in report["left_out"]:
        console.print(f"Left out: {entry['genre']}: {entry['reason']}.")
    for note in report["notes"]:
        console.print(note)


def _count(in_genre_share: float, length: int) -> str:
    return f"{round(in_genre_share * length)}/{length}"
