"""The Gibbs sampler's kept samples: what the averaged predictor needs, and the run folder's form of it.

The prediction averaged over ``K`` samples, ``mean + avg(b_u) + avg(b_i) + (1/K) sum_s p_us . q_is``, is exactly one
factor model: the averaged biases, and user and movie tables holding the ``K`` samples' vectors side by side, each
scaled by ``1/sqrt(K)``. ``gibbs_stored = S`` stores ``S`` of the kept samples (evenly spaced over the planned
ones) that way, and ``FactorModel``, ``serve`` and ``recommend`` score their average unchanged, at ``S`` times
the factor width. The default, ``gibbs_stored = 0``, stores the posterior mean vectors (width ``dim``): the
product of means is not the mean of products, yet on ml-latest-small's validation ratings (hybrid, dim 10, 150
kept sweeps) it scored 0.8196 against 0.8200 for the average of all 150 samples, 0.8245 for 16 stored and 0.8451
for 4 (too few draws). The averaged biases are exact either way. Validation follows the average of every kept
sample.

From a cold start (``gibbs``) the means lose more to the average of the products, and other summaries of width
``dim`` were measured against them on ``benchmarks/bayes.py --validation`` (hybrid, dim 16, 150 sweeps, split seeds
0 and 1; chain seed 0, then 1): the means 0.8083 and 0.7977, 0.8095 and 0.7928; the average of every sample's
prediction itself (not storable at width ``dim``) 0.8073 and 0.7951, 0.8067 and 0.7911; the exact best rank-16
approximation of the averaged interaction matrix ``(1/K) sum_s P_s Q_s'`` 0.8078 and 0.7964, 0.8078 and 0.7922; the
same from a single-pass randomised sketch (Tropp et al. 2017; range ``2 dim + 1``, co-range ``4 dim + 3``), the form
that scales, 0.8087 and 0.7970; the means after rotating each sample onto the running mean (orthogonal Procrustes)
0.8078 and 0.7966, 0.8075 and 0.7935; 32 stored samples 0.8080 and 0.8004. None gains 0.0015 on both split seeds:
the means stay.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from movierec.train.als import Factors


class KeptSamples:
    """Running sums over the kept samples, the stored samples, and the validation predictions' sum."""

    def __init__(self, n_users: int, n_items: int, dim: int, n_valid: int, planned: int, stored: int) -> None:
        """``planned`` samples will be kept, ``stored`` of them (at most ``planned``) stored; tensors on the CPU
        until ``to`` moves them."""
        self.planned, self.stored = planned, min(stored, planned)
        self.kept = 0
        self.tensors: dict[str, torch.Tensor] = {
            "valid": torch.zeros(n_valid, dtype=torch.float64),
            "user_bias": torch.zeros(n_users, dtype=torch.float64),
            "item_bias": torch.zeros(n_items, dtype=torch.float64),
            "user_factors": torch.zeros(n_users, dim, dtype=torch.float64),
            "item_factors": torch.zeros(n_items, dim, dtype=torch.float64),
            "stored_users": torch.zeros(n_users, 0),
            "stored_items": torch.zeros(n_items, 0),
        }

    def to(self, device: torch.device) -> None:
        self.tensors = {name: value.to(device) for name, value in self.tensors.items()}

    def add(self, users: Factors, items: Factors, valid: torch.Tensor) -> None:
        """Keep one sample: the whole user and movie rows (padding row last) and its validation predictions."""
        self.kept += 1
        t = self.tensors
        t["valid"] += valid
        for name, side in (("user", users), ("item", items)):
            t[f"{name}_bias"] += side.bias[:-1]
            t[f"{name}_factors"] += side.factors[:-1]
        if self.stored and (self.kept * self.stored) // self.planned > ((self.kept - 1) * self.stored) // self.planned:
            t["stored_users"] = torch.cat([t["stored_users"], users.factors[:-1]], 1)
            t["stored_items"] = torch.cat([t["stored_items"], items.factors[:-1]], 1)

    def valid_mean(self) -> torch.Tensor:
        return (self.tensors["valid"] / max(1, self.kept)).to(torch.float32)

    def tables(self) -> dict[str, Any]:
        """The averaged biases and the factor tables the run folder stores (see the module docstring)."""
        t, kept = self.tensors, max(1, self.kept)
        out = {name: (t[name] / kept).to("cpu", torch.float32).numpy() for name in ("user_bias", "item_bias")}
        for name, stored in (("user_factors", "stored_users"), ("item_factors", "stored_items")):
            if self.stored:
                samples = t[stored].shape[1] // t["user_factors"].shape[1]
                out[name] = (t[stored] / math.sqrt(max(1, samples))).to("cpu", torch.float32).numpy()
            else:
                out[name] = (t[name] / kept).to("cpu", torch.float32).numpy()
        return out

    def state(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """Tensors and JSON values for a checkpoint."""
        return dict(self.tensors), {"kept": self.kept}

    def restore(self, tensors: dict[str, torch.Tensor], values: dict[str, Any]) -> None:
        device = self.tensors["valid"].device
        # a checkpoint's other tensors (the SVD++ sums of chains before the flipped block) are left out
        self.tensors = {name: tensors[name].to(device) for name in self.tensors}
        self.kept = int(values["kept"])
