"""Load speed on an ML-25M-sized ratings.csv: first load (parse + write the Parquet cache), then reload.

    python benchmarks/load_speed.py [--ratings 25000095] [--keep DIR] [--json]

Writes a synthetic ratings.csv of ML-25M's shape (162,541 users, 59,047 movies), then runs each load in a
fresh process so its peak memory is its own: the first `load_dataset` (parse + cache), a reload from the cache,
and, as a reference in the same run, `pandas.read_csv` of the same file with the default engine.
Bars (issue 2): first load <= 30 s, reload <= 3 s, peak memory <= 2 GB.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from movierec.data.synthetic import ML25M_ITEMS, ML25M_RATINGS, ML25M_USERS, generate_ratings, write_ratings_csv

CHILD = r"""
import json, resource, sys, time
import pandas as pd
from movierec.data.loader import load_dataset
mode, path = sys.argv[1], sys.argv[2]
started = time.perf_counter()  # imports are paid once per process; the load is timed from here
if mode == "pandas":
    rows = len(pd.read_csv(path))
else:
    rows = len(load_dataset(path).ratings)
seconds = time.perf_counter() - started
peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
print(json.dumps({"seconds": seconds, "peak_gb": peak_gb, "rows": rows}))
"""


def timed(mode: str, path: Path, home: Path) -> dict[str, float]:
    env = {**os.environ, "MOVIEREC_HOME": str(home)}
    out = subprocess.run([sys.executable, "-c", CHILD, mode, str(path)], env=env, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"{mode} load failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ratings", type=int, default=ML25M_RATINGS)
    parser.add_argument("--keep", type=Path, help="folder to keep the CSV in (default: a temporary folder)")
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="movierec-load-"))
    work.mkdir(parents=True, exist_ok=True)
    csv_path = work / "ratings.csv"
    if not csv_path.exists():
        started = time.perf_counter()
        users = min(ML25M_USERS, max(1, args.ratings // 20))
        items = min(ML25M_ITEMS, args.ratings)
        write_ratings_csv(generate_ratings(users, items, args.ratings, seed=0), csv_path)
        print(f"wrote {csv_path} ({csv_path.stat().st_size / 2**20:.0f} MiB) in {time.perf_counter() - started:.1f} s")
    home = work / "home"
    shutil.rmtree(home, ignore_errors=True)  # the first load must parse, not find an earlier cache
    first = timed("movierec", csv_path, home)
    again = timed("movierec", csv_path, home)
    reference = timed("pandas", csv_path, work / "unused")
    print(f"{first['rows']:,} ratings, {os.cpu_count()} cores")
    print(f"{'':34s} {'seconds':>8s} {'peak GB':>8s}   bar")
    print(
        f"{'first load (parse + Parquet cache)':34s} {first['seconds']:8.2f} {first['peak_gb']:8.2f}   <= 30 s, <= 2 GB"
    )
    print(f"{'reload from the cache':34s} {again['seconds']:8.2f} {again['peak_gb']:8.2f}   <= 3 s")
    print(f"{'reference: pandas.read_csv':34s} {reference['seconds']:8.2f} {reference['peak_gb']:8.2f}")
    met = first["seconds"] <= 30 and again["seconds"] <= 3 and max(first["peak_gb"], again["peak_gb"]) <= 2
    print(f"bars {'met' if met else 'NOT met'}")
    if args.json:
        print(json.dumps({"first": first, "reload": again, "pandas": reference}))


if __name__ == "__main__":
    main()
