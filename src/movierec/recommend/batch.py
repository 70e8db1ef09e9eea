"""Top-N lists for many users at once, a chunk of users at a time so memory stays bounded.

For each chunk the rank scores of every candidate movie come from one matrix product: the biases, the global
mean and the scale are folded into two extra factor columns, so ``[p_u, b_u + mean - low, 1] · [q_i, 1, b_i]``
divided by ``high - low`` is the normalised predicted rating before the link. Then the link (clip to [0, 1] or
a sigmoid), the popularity prior and the "likely to watch" scores are added in place, the user's rated
movies are set to ``-inf`` and ``torch.topk`` keeps the best ``n``. Peak memory is about
``chunk_size × n_candidates × 4`` bytes beyond the model, whatever the number of users.
Scores match ``FactorModel.rank_scores`` up to float32 rounding.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from movierec.models.factors import FactorModel
from movierec.recommend.rated import RatedSets

DEFAULT_CHUNK = 512


@dataclass(frozen=True)
class TopN:
    """Item indices [n_users, n] best first (``-1`` pads a short list) and their rank scores."""

    users: np.ndarray  # int64 [n_users]
    items: np.ndarray  # int64 [n_users, n]
    scores: np.ndarray  # float32 [n_users, n] (-inf in padded slots)


def batch_top_n(
    model: FactorModel,
    rated: RatedSets,
    n: int = 10,
    *,
    users: np.ndarray | None = None,
    candidates: np.ndarray | None = None,
    chunk_size: int = DEFAULT_CHUNK,
    device: str = "cpu",
) -> TopN:
    """Each user's ``n`` best candidate movies by rank score, never one they rated.

    ``users``: user indices (default: every user with a rating in ``rated``). ``candidates``: bool [n_items],
    the movies that may be recommended (default: every movie the model was trained on).
    """
    import torch  # here: serving one request at a time needs no torch, and importing it costs a second and memory

    if n < 1:
        raise ValueError(f"n is {n}; ask for at least 1 movie.")
    if chunk_size < 1:
        raise ValueError(f"chunk_size is {chunk_size}; it must be at least 1.")
    p = model.params
    if users is None:
        users = np.flatnonzero(np.diff(rated.indptr) > 0)
    users = np.asarray(users, dtype=np.int64)
    if candidates is None:
        candidates = p.item_known if p.item_known.size else np.ones(p.n_items, dtype=bool)
    columns = np.flatnonzero(candidates)
    column_of = np.full(p.n_items, -1, dtype=np.int64)
    column_of[columns] = np.arange(columns.size)
    take = min(n, columns.size)

    dev = torch.device(device)
    span = p.high - p.low
    linear = p.link != "sigmoid"
    offset = (p.global_mean - p.low) / span if linear else p.global_mean
    scale = 1.0 / span if linear else 1.0
    item_side = np.empty((columns.size, p.dim + 2), dtype=np.float32)
    item_side[:, : p.dim] = p.item_factors[columns]
    item_side[:, p.dim] = 1.0
    item_side[:, p.dim + 1] = p.item_bias[columns] * scale
    items_t = torch.from_numpy(item_side).to(dev).T.contiguous()  # [dim + 2, n_candidates]
    prior = None
    if p.rank_weight and p.item_prior.size:
        prior = torch.from_numpy((p.rank_weight * p.item_prior[columns]).astype(np.float32)).to(dev)
    user_known = p.user_known if p.user_known.size else np.ones(p.n_users, dtype=bool)
    watch_items = None
    if p.has_watch and p.watch_weight:
        watch_items = torch.from_numpy((p.watch_weight * p.watch_item[columns]).T.copy()).to(dev)

    out_items = np.full((users.size, n), -1, dtype=np.int64)
    out_scores = np.full((users.size, n), -np.inf, dtype=np.float32)
    if take == 0 or users.size == 0:
        return TopN(users, out_items, out_scores)
    user_side = np.empty((min(chunk_size, users.size), p.dim + 2), dtype=np.float32)
    with torch.inference_mode():
        for start in range(0, users.size, chunk_size):
            chunk = users[start : start + chunk_size]
            side = user_side[: chunk.size]
            known = user_known[chunk]
            side[:, : p.dim] = p.user_factors[chunk] * (scale * known[:, None])
            side[:, p.dim] = np.where(known, p.user_bias[chunk], 0.0) * scale + offset
            side[:, p.dim + 1] = 1.0
            scores = torch.from_numpy(side).to(dev) @ items_t  # [chunk, n_candidates]
            if linear:
                scores.clamp_(0.0, 1.0)
            else:
                scores.sigmoid_()
            if prior is not None:
                scores += prior
            if watch_items is not None:
                scores += torch.from_numpy(p.watch_user[chunk]).to(dev) @ watch_items
            rows, seen = rated.pairs_of(chunk)
            cols = column_of[seen]
            hit = cols >= 0
            if hit.any():
                scores[torch.from_numpy(rows[hit]).to(dev), torch.from_numpy(cols[hit]).to(dev)] = -torch.inf
            best, where = torch.topk(scores, take, dim=1)
            best_np = best.cpu().numpy()
            where_np = columns[where.cpu().numpy()]
            out_scores[start : start + chunk.size, :take] = best_np
            out_items[start : start + chunk.size, :take] = np.where(np.isneginf(best_np), -1, where_np)
    return TopN(users, out_items, out_scores)
