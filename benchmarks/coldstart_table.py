"""The cold-start table: users held out of training reveal k ratings, fold-in scores the rest.

    python benchmarks/coldstart_table.py                       # ml-latest-small, the default model, k = 5, 10, 20
    python benchmarks/coldstart_table.py --model hybrid --order random --seed 1
    python benchmarks/coldstart_table.py --solver loop         # the same model trained by the gradient loop

Runs ``movierec.evaluate.coldstart.cold_start`` (the protocol behind `movierec evaluate --protocol
cold-start`) and prints, for every k, the model beside the bias-only baseline (user bias folded in from the
same k ratings) and popularity, all measured in this run on the same users.
"""

from __future__ import annotations

import argparse
import time

import torch

from movierec.data.loader import load_dataset
from movierec.evaluate.coldstart import ColdStartOptions, parse_given
from movierec.models import registry
from movierec.models.registry import DEFAULT_MODEL
from movierec.train.cold_start import cold_start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="ml-latest-small")
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--solver", default=None, help="train with this solver (default auto, as `movierec train`)")
    parser.add_argument("--given", default="5,10,20")
    parser.add_argument("--fraction", type=float, default=ColdStartOptions.holdout_fraction)
    parser.add_argument("--order", default="time", choices=["time", "random"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    options = ColdStartOptions(
        given=parse_given(args.given), holdout_fraction=args.fraction, order=args.order, seed=args.seed
    )
    started = time.perf_counter()
    dataset = load_dataset(args.data)
    config = registry.config_for_data(args.model, lambda: len(dataset.ratings), device="cpu", solver=args.solver)
    rows = cold_start(config, dataset, options)
    seconds = time.perf_counter() - started
    solver = f" (--solver {config.solver})"
    print(
        f"{args.data}: {rows[0]['n_users']} held-out users ({args.fraction:.0%}, seed {args.seed}), first k by "
        f"{args.order}; {args.model}{solver} trained on the rest with its defaults ({seconds:.0f} s in all)"
    )
    header = ("k", "RMSE", "biases RMSE", "NDCG@10", "popularity", "recall@10", "popularity", "scored")
    print("".join(f"{h:>12}" for h in header))
    for r in rows:
        values = (r["rmse"], r["baseline_rmse"], r.get("ndcg@10"), r.get("popularity_ndcg@10"), r.get("recall@10"))
        values += (r.get("popularity_recall@10"),)
        cells = "".join(f"{v:>12.4f}" if v is not None else f"{'—':>12}" for v in values)
        print(f"{r['given']:>12}{cells}{r['n_scored']:>12,}")
    at10 = next((r for r in rows if r["given"] == 10), None)
    if at10 is not None and "ndcg@10" in at10:
        rmse_ok = "beats" if at10["rmse"] < at10["baseline_rmse"] else "does NOT beat"
        ndcg_ok = "beats" if at10["ndcg@10"] > at10["popularity_ndcg@10"] else "does NOT beat"
        print(f"at k = 10 the model {rmse_ok} the bias-only baseline on RMSE and {ndcg_ok} popularity on NDCG@10")


if __name__ == "__main__":
    main()
