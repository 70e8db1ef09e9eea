"""The hybrid's feature rows in the Gibbs sampler: each row ``[W_f, c_f]`` drawn given everything else.

A movie's whole row is ``own_i + sum_f w_if theta_f``, so a feature row's conditional gathers, over the movies that
carry it, the movie's Gram matrix ``G_i = A_i'A_i`` (its raters' ``[p_u, 1]``) and residual gradient ``g_i = A_i'e_i``
(its ratings' errors under the whole current prediction): precision ``alpha sum_i w_if^2 G_i + diag(lambda)`` and
right-hand side ``alpha sum_i w_if (g_i + w_if G_i theta_f)``, whose second part is the precision's own sum
``sum_i w_if^2 G_i`` times ``theta_f`` (one product per feature, not per movie). The movie half of the sweep leaves
``G_i`` and ``g_i`` behind, so drawing the features costs no pass over the ratings.

Two features that share no movie are independent given the rest, so the features are coloured (greedily) so that
no movie carries two of one colour, and each colour is drawn at once; after it, ``g_i`` of its movies is updated.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from movierec.train.gibbs_draws import draw_rows


@dataclass(frozen=True)
class Colour:
    """Features that share no movie, and their entries ``(movie, slot, weight)`` (slot: index into ``features``)."""

    features: torch.Tensor  # (M,) int64
    movies: torch.Tensor  # (E,) int64
    slots: torch.Tensor  # (E,) int64
    weights: torch.Tensor  # (E,) float32


def colour_features(indptr: np.ndarray, indices: np.ndarray, n_features: int) -> np.ndarray:
    """A colour per feature such that no movie (a CSR row) carries two features of one colour (greedy, most
    shared features first)."""
    lengths = np.diff(indptr)
    movie = np.repeat(np.arange(lengths.size), lengths)
    repeats = lengths[movie]
    left = np.repeat(np.arange(indices.size), repeats)
    within = np.arange(left.size) - np.repeat(np.cumsum(repeats) - repeats, repeats)
    right = indptr[movie[left]] + within
    conflict = np.zeros((n_features, n_features), bool)
    conflict[indices[left], indices[right]] = True
    np.fill_diagonal(conflict, False)
    colours = np.full(n_features, -1, np.int64)
    for feature in np.argsort(-conflict.sum(1), kind="stable"):
        taken = set(colours[conflict[feature]].tolist())
        colours[feature] = next(c for c in range(n_features) if c not in taken)
    return colours


def colour_classes(
    indptr: np.ndarray, indices: np.ndarray, weights: np.ndarray, n_features: int, device: torch.device
) -> list[Colour]:
    """The features grouped by colour, with each colour's entries of the movie x feature matrix."""
    colours = colour_features(indptr, indices, n_features)
    movie = np.repeat(np.arange(indptr.size - 1), np.diff(indptr))
    classes = []
    for colour in range(int(colours.max(initial=-1)) + 1):
        members = np.flatnonzero(colours == colour)
        slot_of = np.full(n_features, -1, np.int64)
        slot_of[members] = np.arange(members.size)
        chosen = colours[indices] == colour
        classes.append(
            Colour(
                *(
                    torch.from_numpy(np.ascontiguousarray(array)).to(device)
                    for array in (members, movie[chosen], slot_of[indices[chosen]], weights[chosen].astype(np.float32))
                )
            )
        )
    return classes


def draw_features(
    table: torch.Tensor,
    classes: list[Colour],
    gram: torch.Tensor,
    feature_gram: torch.Tensor,
    gradient: torch.Tensor,
    noise_precision: float,
    prior: tuple[torch.Tensor, torch.Tensor],
    generator: torch.Generator,
) -> None:
    """Draw every feature row of ``table`` (``(n_features, k)``) in place, colour by colour, and keep each movie's
    ``gradient`` (``g_i``, ``(n_items + 1, k)``) up to date; ``gram`` holds ``G_i``, ``feature_gram`` each feature's
    ``sum_i w_if^2 G_i`` and ``prior`` each feature row's mean and precision (``(n_features, k)`` each)."""
    for colour in classes:
        members, w = colour.features, colour.weights[:, None]
        current, own_gram = table.index_select(0, members), feature_gram.index_select(0, members)
        rhs = torch.zeros_like(current).index_add_(0, colour.slots, w * gradient.index_select(0, colour.movies))
        rhs += torch.bmm(own_gram, current.unsqueeze(-1)).squeeze(-1)  # sum_i w_if^2 G_i theta_f
        mean, precision = (part.index_select(0, members) for part in prior)
        drawn = draw_rows(own_gram, rhs, noise_precision, mean, precision, generator)
        table.index_copy_(0, members, drawn)
        change = (w * (drawn - current).index_select(0, colour.slots)).unsqueeze(-1)
        gradient.index_add_(0, colour.movies, -torch.bmm(gram.index_select(0, colour.movies), change).squeeze(-1))
