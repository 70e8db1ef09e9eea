"""The hybrid's ablation on ml-latest-small, beside a tuned biased-mf fitted on the very same splits.

Protocol (as benchmarks/accuracy.py): ml-latest-small, random 90/10 split per split seed, every model fitted on
the training side (its early-stopping validation split carved out of it), test RMSE averaged over the seeds.

Rows, each adding one component to the one before:
  biases only                   closed-form user and movie biases
  + factors                     the hybrid with every feature switched off: biased matrix factorisation
  + genres/year                 learned genre and release-decade embeddings on the movie side
  + tags                        learned user-tag embeddings on the movie side
  + implicit term               the SVD++ sum over the movies each user rated: the hybrid's defaults
and beside them `biased-mf` with its shipped defaults (``registry.config_for``) and `biased-mf` tuned per split
on VALIDATION RMSE over a small grid (its shipped defaults, embedding size x L2 penalty, one lower learning
rate; the test ratings never choose anything).

Then the cold-items protocol (movierec.train.cold_items): 10% of the rated movies removed from training,
their test ratings predicted by the hybrid, the genre average and the global mean.

    python benchmarks/accuracy_hybrid.py [--seeds 0,1,2] [--no-tuning] [--no-cold] [--json]

Training seconds are wall-clock on this machine with torch's default threads; on a shared machine they vary
with the load, which is printed beside them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from typing import Any

import torch

from movierec.data.loader import load_dataset
from movierec.data.ratings import Dataset, Ratings
from movierec.data.split import random_split
from movierec.evaluate.protocol import evaluate_ratings
from movierec.models import registry
from movierec.models.registry import DEFAULT_MODEL
from movierec.train.cold_items import evaluate_cold_items
from movierec.train.driver import fit

ABLATION: list[tuple[str, dict[str, Any]]] = [
    ("biases only", {"model": "biases"}),
    ("+ factors", {"model": "hybrid", "use_genres": False, "use_tags": False, "use_implicit": False}),
    ("+ genres/year", {"model": "hybrid", "use_tags": False, "use_implicit": False}),
    ("+ tags", {"model": "hybrid", "use_implicit": False}),
    ("+ implicit term = hybrid", {"model": "hybrid"}),
]
HYBRID_ROW = "+ implicit term = hybrid"
BIASED_MF_GRID: list[dict[str, Any]] = [
    {},  # the shipped defaults (the registry's defaults, themselves found by `movierec tune` on validation data)
    *({"dim": dim, "reg": reg, "lr": 0.005} for dim in (32, 64, 128) for reg in (0.07, 0.1, 0.14)),
    {"dim": 64, "reg": 0.1, "lr": 0.003},
]
RMSE_BAR = 0.838
MARGIN_BAR = 0.01
SECONDS_BAR = 30.0


def fit_and_score(settings: dict[str, Any], dataset: Dataset, train: Ratings, test: Ratings) -> dict[str, Any]:
    config = registry.config_for(**settings)  # the model's shipped defaults, then the row's settings
    result = fit(config, dataset, train, progress=False)
    metrics = evaluate_ratings(result.model.predict, train, test)
    return {
        "rmse": metrics["rmse"],
        "mae": metrics["mae"],
        "val_rmse": result.best_val_rmse,
        "seconds": result.seconds,
        "settings": settings,
    }


def tuned_biased_mf(dataset: Dataset, train: Ratings, test: Ratings) -> dict[str, Any]:
    """Fit every grid point; keep the one with the best validation RMSE (then, and only then, read its test)."""
    started = time.perf_counter()
    trials = [fit_and_score({"model": "biased-mf", **point}, dataset, train, test) for point in BIASED_MF_GRID]
    best = min(trials, key=lambda row: row["val_rmse"])
    return {**best, "tuning_seconds": time.perf_counter() - started}


def run(seeds: list[int], tuning: bool, cold: bool) -> dict[str, Any]:
    dataset = load_dataset("ml-latest-small")
    rows: dict[str, list[dict[str, Any]]] = {}
    cold_rows: list[dict[str, Any]] = []
    for seed in seeds:
        split = random_split(dataset.ratings, 0.1, seed=seed)
        for name, settings in ABLATION:
            rows.setdefault(name, []).append(fit_and_score(settings, dataset, split.train, split.test))
            print(f"  seed {seed}  {name:<28} RMSE {rows[name][-1]['rmse']:.4f}", flush=True)
        default_name = "biased-mf (defaults)"
        rows.setdefault(default_name, []).append(
            fit_and_score({"model": "biased-mf"}, dataset, split.train, split.test)
        )
        if tuning:
            rows.setdefault("biased-mf (tuned on validation)", []).append(
                tuned_biased_mf(dataset, split.train, split.test)
            )
        if DEFAULT_MODEL not in ("biased-mf", "hybrid"):
            rows.setdefault(f"default ({DEFAULT_MODEL})", []).append(
                fit_and_score({"model": DEFAULT_MODEL}, dataset, split.train, split.test)
            )
        if cold:
            hybrid = registry.config_for("hybrid")
            cold_rows.append(evaluate_cold_items(hybrid, dataset, split.train, seed=seed))
    return {"rows": rows, "cold": cold_rows}


def summarise(result: dict[str, Any], seeds: list[int]) -> dict[str, Any]:
    summary: dict[str, Any] = {"seeds": seeds, "rows": {}}
    for name, runs in result["rows"].items():
        summary["rows"][name] = {
            "rmse": statistics.fmean(r["rmse"] for r in runs),
            "rmse_per_seed": [r["rmse"] for r in runs],
            "mae": statistics.fmean(r["mae"] for r in runs),
            "seconds": statistics.fmean(r["seconds"] for r in runs),
            "chosen": [r["settings"] for r in runs] if "tuning_seconds" in runs[0] else None,
            "tuning_seconds": statistics.fmean(r["tuning_seconds"] for r in runs)
            if "tuning_seconds" in runs[0]
            else None,
        }
    if result["cold"]:
        names = list(result["cold"][0]["results"])
        summary["cold_items"] = {
            name: statistics.fmean(c["results"][name]["rmse"] for c in result["cold"]) for name in names
        }
        summary["cold_items_movies"] = [c["n_movies_held_out"] for c in result["cold"]]
        summary["cold_items_ratings"] = [c["n_test"] for c in result["cold"]]
    return summary


def report(summary: dict[str, Any], load_before: tuple[float, ...], load_after: tuple[float, ...]) -> None:
    rows = summary["rows"]
    seeds = summary["seeds"]
    print()
    print(f"ml-latest-small, random 90/10, split seeds {seeds}: mean test RMSE (per seed), MAE, training seconds")
    print(f"{'model':<34} {'RMSE':>7}  {'per seed':<26} {'MAE':>7} {'train s':>8}")
    for name, row in rows.items():
        per_seed = " ".join(f"{value:.4f}" for value in row["rmse_per_seed"])
        print(f"{name:<34} {row['rmse']:7.4f}  {per_seed:<26} {row['mae']:7.4f} {row['seconds']:8.1f}")
    tuned = rows.get("biased-mf (tuned on validation)")
    if tuned is not None:
        chosen = ", ".join(_settings(c) for c in tuned["chosen"])
        print(f"tuned biased-mf chose (per seed): {chosen}; {len(BIASED_MF_GRID)} grid points, "
              f"{tuned['tuning_seconds']:.0f} s of tuning per seed")  # fmt: skip
    hybrid = rows[HYBRID_ROW]
    candidates = {"default": rows["biased-mf (defaults)"], **({"tuned": tuned} if tuned else {})}
    label, reference = min(candidates.items(), key=lambda item: item[1]["rmse"])  # the stronger on test
    margin = reference["rmse"] - hybrid["rmse"]
    print()
    passed = "yes" if hybrid["rmse"] <= RMSE_BAR else "NO"
    print(f"hybrid (defaults) RMSE {hybrid['rmse']:.4f}  (bar <= {RMSE_BAR}: {passed})")
    print(f"better than the stronger biased-mf row ({label}) by {margin:.4f}  "
          f"(bar >= {MARGIN_BAR}: {'yes' if margin >= MARGIN_BAR else 'NO'})")  # fmt: skip
    print(f"hybrid training {hybrid['seconds']:.1f} s per fit  (bar <= {SECONDS_BAR:.0f} s on 2 cores: "
          f"{'yes' if hybrid['seconds'] <= SECONDS_BAR else 'NO'}); "
          f"biased-mf (defaults) {rows['biased-mf (defaults)']['seconds']:.1f} s in the same run")  # fmt: skip
    if "cold_items" in summary:
        print()
        print(f"cold items: {summary['cold_items_movies']} movies held out per seed, "
              f"{summary['cold_items_ratings']} of their test ratings; mean RMSE")  # fmt: skip
        for name, value in summary["cold_items"].items():
            print(f"  {name:<24} {value:.4f}")
    print()
    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs"
    print(f"{machine}, torch {torch.__version__} with {torch.get_num_threads()} threads; "
          f"load average {load_before[0]:.1f} before, {load_after[0]:.1f} after")  # fmt: skip


def _settings(chosen: dict[str, Any]) -> str:
    rest = {k: v for k, v in chosen.items() if k != "model"}
    return " ".join(f"{k} {v}" for k, v in rest.items()) or "shipped defaults"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated split seeds (default 0,1,2)")
    parser.add_argument("--no-tuning", action="store_true", help="skip the tuned biased-mf (grid on validation)")
    parser.add_argument("--no-cold", action="store_true", help="skip the cold-items protocol")
    parser.add_argument("--json", action="store_true", help="also print the summary as one JSON line")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    load_before = os.getloadavg()
    summary = summarise(run(seeds, tuning=not args.no_tuning, cold=not args.no_cold), seeds)
    report(summary, load_before, os.getloadavg())
    if args.json:
        print(json.dumps(summary))


if __name__ == "__main__":
    main()
