"""The taste protocol on ml-latest-small: does a new user's top 10 follow the genre they like?

Trains the default model on a random 90/10 split of the embedded data (split seed ``--seed``), runs
`movierec evaluate RUN --protocol taste` on it (the model beside EASE and popularity, on the same built users)
and prints its tables, then the issue's bars for the model, each marked met or not.

    python benchmarks/taste.py [--seed 0] [--json]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from movierec.artifact.run import load_run
from movierec.cli.console import make_console
from movierec.cli.taste import print_taste
from movierec.data.source import DataOptions, count_ratings
from movierec.models import registry
from movierec.recommend.taste import run_taste
from movierec.train.session import train_run

BARS: list[tuple[str, Callable[[dict[str, Any]], bool]]] = [
    ("liker lists average >= 0.45 in-genre", lambda s: s["liker_in_genre_mean"] >= 0.45),
    ("no genre's liker list below 2 of 10 in-genre", lambda s: s["liker_lowest_count"] >= 2),
    ("swapped lists hold <= 1 of 10 of the genre on average", lambda s: s["swapped_in_genre_mean"] <= 0.1),
    ("the two lists overlap in <= 2 movies on average", lambda s: s["overlap_mean"] <= 2),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=0, help="split seed of the random 90/10 split")
    parser.add_argument("--json", action="store_true", help="print the protocol's JSON object as the last line")
    args = parser.parse_args()

    data = DataOptions(split_seed=args.seed)
    config = registry.config_for_data(registry.DEFAULT_MODEL, lambda: count_ratings(data))  # as `movierec train`
    with tempfile.TemporaryDirectory() as folder:
        run_dir = Path(folder) / "run"
        started = time.perf_counter()
        train_run(config, data, run_dir, progress=False)
        trained = time.perf_counter() - started
        report = run_taste(load_run(run_dir))
    print(
        f"ml-latest-small, random 90/10 split seed {args.seed}: {config.model} (--solver {config.solver}) trained in "
        f"{trained:.0f} s"
    )
    print_taste(report, make_console())
    print()
    for label, check in BARS:
        print(f"[{'met' if check(report['summary']['model']) else 'NOT met'}] {config.model}: {label}")
    if args.json:
        print(json.dumps(report))


if __name__ == "__main__":
    main()
