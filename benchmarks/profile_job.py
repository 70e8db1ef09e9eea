"""Where the time of a whole `movierec train` job goes, from a sampling profiler (py-spy), by phase.

    python benchmarks/profile_job.py --data RELEASE_DIR -- --model biased-mf --solver als --dim 81 --epochs 9
    python benchmarks/profile_job.py --ratings 2000000 -- --model biased-mf --solver als

Runs ``movierec train --data DIR --json`` (and the flags after ``--``) under ``py-spy record`` with an empty cache
folder, so parsing the CSV is part of it, and attributes every sample to the innermost phase on its stack:

- load: reading and parsing the ratings, the Parquet cache, the split (``load_split``);
- epochs: the training epochs (``run_epochs``);
- watch: fitting the "likely to watch" component, both fits (``fit_watch``);
- ranking weights: choosing them on validation, less the watch fit inside (``choose_rank_weight``);
- evaluation: the test metrics and the baselines beside them (``compare_with_baselines``);
- save: the run folder (``save_run``, ``stream_train``);
- other: start-up and imports, finishing the model, what no phase names.

With ``--ratings N`` it first writes an ML-25M-shaped synthetic release of N ratings (as ``whole_job.py`` does).
py-spy samples from outside the process (``pip install py-spy``); only the main thread's samples count, idle ones
included (``--threads --idle``), so that seconds (samples / rate) add up to the process's wall time, not its CPU
time, and a phase whose compiled loops run on worker threads counts the time its main thread waits for them.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from whole_job import write_release

PHASES = {
    "load_split": "load",
    "run_epochs": "epochs",
    "fit_watch": "watch",
    "choose_rank_weight": "ranking weights",
    "compare_with_baselines": "evaluation",
    "save_run": "save",
    "stream_train": "save",
}
"""A function on the stack, and the phase its samples count in (the innermost one listed wins)."""
ORDER = ("load", "epochs", "watch", "ranking weights", "evaluation", "save", "other")


def phase_of(stack: str) -> str:
    """The phase of one py-spy raw stack (``frame;frame;...``, outermost first)."""
    for frame in reversed(stack.split(";")):
        phase = PHASES.get(frame.split(" (", 1)[0])
        if phase is not None:
            return phase
    return "other"


def breakdown(raw: Path, rate: int) -> dict[str, float]:
    """Seconds per phase from py-spy's raw output (``stack count`` lines) sampled at ``rate`` per second."""
    seconds: dict[str, float] = collections.defaultdict(float)
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        thread, _, stack = stack.partition(";") if stack.startswith("thread (") else ("MainThread", "", stack)
        if stack and thread.endswith("MainThread"):
            seconds[phase_of(stack)] += int(count) / rate
    return {phase: seconds.get(phase, 0.0) for phase in ORDER}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    ours, train_flags = (argv[: argv.index("--")], argv[argv.index("--") + 1 :]) if "--" in argv else (argv, [])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, help="a MovieLens-style release folder (ratings.csv, movies.csv)")
    parser.add_argument("--ratings", type=int, help="write a synthetic release of this many ratings instead")
    parser.add_argument("--rate", type=int, default=20, help="samples per second (default 20)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print a JSON object as the last line")
    args = parser.parse_args(ours)
    if (args.data is None) == (args.ratings is None):
        parser.error("give one of --data DIR and --ratings N")
    if shutil.which("py-spy") is None:
        raise SystemExit("py-spy is not installed; pip install py-spy")
    work = Path(tempfile.mkdtemp(prefix="movierec-profile-"))
    try:
        folder = args.data or work / "release"
        if args.ratings is not None:
            write_release(folder, args.ratings, args.seed)
        raw = work / "profile.txt"
        command = ["py-spy", "record", "--threads", "--idle", "--rate", str(args.rate), "--format", "raw"]
        command += ["-o", str(raw), "--"]
        command += [sys.executable, "-m", "movierec", "train", "--data", str(folder), "--json"]
        command += ["--out", str(work / "run"), *train_flags]
        env = {**os.environ, "MOVIEREC_HOME": str(work / "home"), "PYTHONUNBUFFERED": "1"}
        started = time.perf_counter()
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        wall = time.perf_counter() - started
        if done.returncode != 0:
            raise SystemExit(f"movierec train failed ({done.returncode}):\n{done.stderr[-3000:]}")
        # py-spy writes its own lines ("py-spy> ...") to the same stdout: the run's JSON is the last object line
        result = json.loads(next(line for line in reversed(done.stdout.splitlines()) if line.startswith("{")))
        seconds = breakdown(raw, args.rate)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    total = sum(seconds.values())
    print(f"movierec train {' '.join(train_flags)}: {wall:.1f} s wall, test RMSE {result['rmse']:.4f}")
    for phase in ORDER:
        print(f"  {phase:<16} {seconds[phase]:7.1f} s  {100 * seconds[phase] / max(total, 1e-9):5.1f}%")
    if args.json:
        print(json.dumps({"wall_seconds": wall, "rmse": result["rmse"], "phases": seconds}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
