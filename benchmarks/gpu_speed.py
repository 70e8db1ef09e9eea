"""Epoch time and ratings/s of the fast path (``--solver als``) on whatever CUDA GPU is present.

    python benchmarks/gpu_speed.py                     # 25,000,095 ML-25M-shaped ratings, dim 64
    python benchmarks/gpu_speed.py --ratings 5000000

Prints torch/CUDA versions and the GPU, then the fast path's epoch seconds and ratings/s and the reference
loop's ratings/s (dense tables, Adam + weight_decay, batch 8192) on the same GPU, and their ratio. Data are
synthesised on the fly (no downloads, no extra dependencies). Meant to finish within 3 minutes; without a GPU
it says so and exits 0; if the GPU runs out of memory it says so and exits 1.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import torch

from movierec.config import TrainConfig
from movierec.data.synthetic import ML25M_RATINGS
from train_speed import REFERENCE, measure_fast, measure_loop, shape_for, synthetic_dataset  # same folder


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ratings", type=int, default=ML25M_RATINGS, help="synthetic ratings (default ML-25M's)")
    parser.add_argument("--dim", type=int, default=64, help="factors per user and movie")
    parser.add_argument("--epochs", type=int, default=3, help="fast-path epochs to time")
    parser.add_argument("--reference-batches", type=int, default=300, help="reference batches to time")
    parser.add_argument("--json", action="store_true", help="print a JSON object as the last line")
    args = parser.parse_args(argv)
    print(f"torch {torch.__version__}, CUDA {torch.version.cuda or 'none'}", flush=True)
    if not torch.cuda.is_available():
        print("gpu_speed: no CUDA GPU found; nothing to measure (train_speed.py measures the CPU).")
        return 0
    properties = torch.cuda.get_device_properties(0)
    memory = properties.total_memory / 2**30
    print(f"GPU: {properties.name}, {memory:.0f} GiB, compute capability {properties.major}.{properties.minor}")
    started = time.perf_counter()
    try:
        return _measure(args, started)
    except torch.cuda.OutOfMemoryError as exc:
        first_line = str(exc).splitlines()[0] if str(exc) else "out of memory"
        print(f"gpu_speed: the GPU ran out of memory ({first_line}); retry with a smaller --ratings or --dim.")
        return 1


def _measure(args: argparse.Namespace, started: float) -> int:
    n_users, n_items = shape_for(args.ratings)
    data = synthetic_dataset(args.ratings)
    print(
        f"data: {args.ratings:,} ratings ({n_users:,} users x {n_items:,} movies), generated on the CPU in "
        f"{time.perf_counter() - started:.1f} s",
        flush=True,
    )
    base = TrainConfig(model="biased-mf", dim=args.dim, device="cuda")
    fast = measure_fast(base, data, args.epochs)
    epochs = ", ".join(f"{s:.2f}" for s in fast["epoch_seconds"])
    print(
        f"fast (als)      : epoch seconds {epochs}; {fast['ratings_per_s']:,.0f} ratings/s (median); "
        f"one-time setup {fast['setup_seconds']:.1f} s; peak GPU memory "
        f"{torch.cuda.max_memory_allocated() / 2**30:.1f} GiB",
        flush=True,
    )
    del fast["val_rmse"]
    torch.cuda.empty_cache()
    reference = measure_loop(base.replace(**REFERENCE), data, args.reference_batches)
    print(
        f"reference (adam): {reference['ratings_per_s']:,.0f} ratings/s (dense tables, Adam + weight_decay, "
        f"batch 8192, {reference['ratings']:,} ratings in {reference['seconds']:.1f} s)"
    )
    ratio = fast["ratings_per_s"] / reference["ratings_per_s"]
    print(f"ratio fast/reference on this GPU: {ratio:.1f}x; total {time.perf_counter() - started:.0f} s")
    if args.json:
        print(
            json.dumps(
                {
                    "device": torch.cuda.get_device_name(0),
                    "epoch_seconds": round(min(fast["epoch_seconds"]), 3),
                    "fast_ratings_per_s": round(fast["ratings_per_s"]),
                    "reference_ratings_per_s": round(reference["ratings_per_s"]),
                    "ratio": round(ratio, 2),
                }
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
