"""Top-N lists for many users at once, a chunk of users at a time so memory stays bounded.

The model gives its ranking score as matrix products (``FactorModel.rank_tables`` for the candidate movies,
``FactorModel.rank_rows`` for a chunk of users, ``rank_scores_of`` for the formula); here they run in torch, on
the CPU or a GPU. For each chunk the user's rated movies are set to ``-inf`` and ``torch.topk`` keeps the best
``n``. Peak memory is about ``chunk_size × n_candidates × 4`` bytes beyond the model, whatever the number of
users. Scores match ``FactorModel.rank_scores`` up to float32 rounding.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from movierec.models.factors import FactorModel, rank_scores_of
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
        candidates = model.known_items()
    columns = np.flatnonzero(candidates)
    column_of = np.full(p.n_items, -1, dtype=np.int64)
    column_of[columns] = np.arange(columns.size)
    take = min(n, columns.size)

    dev = torch.device(device)

    def on_device(table: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(table).to(dev)

    tables = model.rank_tables(columns).map(on_device)

    def best_of(chunk: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(scores, columns) of the chunk's ``take`` best unrated candidates; its score matrix is freed on return,
        before the next chunk's is made."""
        user_rating, user_extra = model.rank_rows(chunk)
        scores = rank_scores_of(tables, on_device(user_rating), None if user_extra is None else on_device(user_extra))
        rows, seen = rated.pairs_of(chunk)
        cols = column_of[seen]
        hit = cols >= 0
        if hit.any():
            scores[torch.from_numpy(rows[hit]).to(dev), torch.from_numpy(cols[hit]).to(dev)] = -torch.inf
        best, where = torch.topk(scores, take, dim=1)
        return best.cpu().numpy(), where.cpu().numpy()

    out_items = np.full((users.size, n), -1, dtype=np.int64)
    out_scores = np.full((users.size, n), -np.inf, dtype=np.float32)
    if take == 0 or users.size == 0:
        return TopN(users, out_items, out_scores)
    with torch.inference_mode():
        for start in range(0, users.size, chunk_size):
            chunk = users[start : start + chunk_size]
            best, where = best_of(chunk)
            out_scores[start : start + chunk.size, :take] = best
            out_items[start : start + chunk.size, :take] = np.where(np.isneginf(best), -1, columns[where])
    return TopN(users, out_items, out_scores)
