"""Tune a model with `movierec tune`'s machinery, then compare the untuned default with the tuned config on test RMSE.

    python benchmarks/tune_defaults.py                          # 30 trials of biased-mf, then 3 test splits
    python benchmarks/tune_defaults.py --config runs/tune-biased-mf/best_config.json   # skip tuning

Tuning runs on the training side of the random 90/10 split with seed 0 (each trial's validation split is carved
out of it; the test ratings are never seen). The comparison is the usual protocol: ml-latest-small, random
90/10, split seeds 0, 1, 2, test RMSE of each configuration fitted on each training side, and the mean.
Split seed 0 is the clean comparison: for seeds 1 and 2, some test ratings were training ratings while tuning.
The bar: 30 trials of biased-mf within 10 minutes on 2 CPU cores (one process, one thread per trial here).
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import statistics
import time
from pathlib import Path

import optuna
import torch
from optuna.trial import TrialState

from movierec.config import TrainConfig
from movierec.data.source import DataOptions, load_split
from movierec.evaluate.protocol import evaluate_ratings
from movierec.train.driver import fit
from movierec.train.tune import best_config, counts, open_study, storage_url, tune, write_outputs

TIME_BAR_S = 600.0
BAR_TRIALS = 30


def run_tuning(model: str, trials: int, storage: str, out: Path, seed: int | None) -> tuple[TrainConfig, float]:
    """Tune on the seed-0 split's training side; return the best config and the seconds the trials took."""
    options = DataOptions(split_seed=0)
    dataset, parts = load_split(options)
    dataset = dataclasses.replace(dataset, ratings=parts.train)
    base = TrainConfig(model=model, watch_dim=0)  # the ranking component does not change RMSE: not timed here
    study = open_study(storage, f"{model}-bench", base, options.to_dict(), sampler_seed=seed)

    def report(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        state = "" if trial.state == TrialState.COMPLETE else f" {trial.state.name.lower()}"
        value = f"{trial.value:.4f}{state}" if trial.value is not None else state
        done = [t.value for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))]
        best = min((v for v in done if v is not None), default=float("nan"))
        print(f"  trial {trial.number:3d}: {value:<15}  best {best:.4f}  {_elapsed(started)}", flush=True)

    started = time.perf_counter()
    ran = tune(study, dataset, parts.train, base, trials, on_trial=report)
    seconds = time.perf_counter() - started
    summary = write_outputs(study, out, {"seconds": round(seconds, 1)})
    tally = counts(study)
    print(
        f"{ran} trials of {model} took {seconds:.0f} s "
        f"(bar for {BAR_TRIALS} trials: {TIME_BAR_S:.0f} s on 2 cores; machine shared with other work); "
        f"{tally['trials_completed']} completed, {tally['trials_pruned']} pruned in the study."
    )
    print(f"best validation RMSE {summary['best_value']:.4f}; config {summary['config']}")
    return best_config(study), seconds


def held_out_rmse(config: TrainConfig, split_seed: int) -> tuple[float, float, float]:
    """(test RMSE, best validation RMSE, fit seconds) of ``config`` on the random 90/10 split ``split_seed``."""
    dataset, parts = load_split(DataOptions(split_seed=split_seed))
    dataset = dataclasses.replace(dataset, ratings=parts.train)
    result = fit(config, dataset, parts.train, progress=False)
    rmse = evaluate_ratings(result.model.predict, parts.train, parts.test)["rmse"]
    return rmse, result.best_val_rmse, result.seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="biased-mf")
    parser.add_argument("--trials", type=int, default=BAR_TRIALS)
    parser.add_argument("--config", type=Path, help="A tuned config file; skips tuning.")
    parser.add_argument("--storage", help="Optuna storage to tune in (default: OUT/tune.db).")
    parser.add_argument(
        "--out", type=Path, help="Folder for the best config and plots (default runs/tune-MODEL-bench)."
    )
    parser.add_argument("--seed", type=int, default=None, help="Sampler seed (default: fresh randomness).")
    parser.add_argument("--split-seeds", default="0,1,2")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (1 is fastest on 2 shared cores).")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    optuna.logging.set_verbosity(logging.WARNING)

    if args.config is not None:
        tuned = TrainConfig.from_file(args.config)
        print(f"tuned config from {args.config} (no tuning run)")
    else:
        out = args.out or Path("runs") / f"tune-{args.model}-bench"
        storage = storage_url(args.storage or out / "tune.db")
        print(f"tuning {args.model}: {args.trials} trials, storage {storage} (rerunning continues that study)")
        tuned, _ = run_tuning(args.model, args.trials, storage, out, args.seed)
    default = TrainConfig(model=tuned.model)
    changed = {k: v for k, v in tuned.to_dict().items() if v != default.to_dict()[k]}
    print(f"\ndefault {tuned.model}: " + ", ".join(f"{k}={getattr(default, k)}" for k in changed))
    print(f"tuned   {tuned.model}: " + ", ".join(f"{k}={_short(v)}" for k, v in changed.items()))

    seeds = [int(s) for s in args.split_seeds.split(",")]
    print(f"\nml-latest-small, random 90/10, test RMSE (validation RMSE, fit seconds); split seeds {seeds}")
    print(f"{'split seed':>10}  {'default':>24}  {'tuned':>24}  {'tuned - default':>15}")
    rows: dict[str, list[float]] = {"default": [], "tuned": []}
    for seed in seeds:
        cells = []
        for name, config in (("default", default), ("tuned", tuned)):
            rmse, val, seconds = held_out_rmse(config, seed)
            rows[name].append(rmse)
            cells.append(f"{rmse:.4f} ({val:.4f}, {seconds:4.1f}s)")
        print(f"{seed:>10}  {cells[0]:>24}  {cells[1]:>24}  {rows['tuned'][-1] - rows['default'][-1]:>+15.4f}")
    mean_default, mean_tuned = statistics.fmean(rows["default"]), statistics.fmean(rows["tuned"])
    print(f"{'mean':>10}  {mean_default:>24.4f}  {mean_tuned:>24.4f}  {mean_tuned - mean_default:>+15.4f}")


def _elapsed(started: float) -> str:
    return f"{time.perf_counter() - started:6.0f} s"


def _short(value: object) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


if __name__ == "__main__":
    main()
