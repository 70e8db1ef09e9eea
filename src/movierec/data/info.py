"""Headline numbers of a dataset, as printed by `movierec data info`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np

from movierec.data.ratings import Dataset


def describe(dataset: Dataset) -> dict[str, Any]:
    """Users, rated items, catalog size, ratings, density, scale, histogram and time span."""
    r = dataset.ratings
    n_users = int(np.count_nonzero(r.user_counts()))
    n_items = int(np.count_nonzero(r.item_counts()))
    values, counts = np.unique(r.ratings, return_counts=True)
    stamps = r.timestamps[r.timestamps > 0]
    return {
        "name": dataset.name,
        "n_ratings": len(r),
        "n_users": n_users,
        "n_items": n_items,
        "n_movies": len(dataset.movies),
        "density": len(r) / max(1, n_users * n_items),
        "scale": dataset.scale.to_dict(),
        "mean_rating": float(r.ratings.mean()) if len(r) else None,
        "histogram": {f"{v:g}": int(c) for v, c in zip(values, counts, strict=True)},
        "first_rating": _iso(int(stamps.min())) if stamps.size else None,
        "last_rating": _iso(int(stamps.max())) if stamps.size else None,
        "n_tags": 0 if dataset.tags is None else len(dataset.tags),
    }


def _iso(timestamp: int) -> str:
    return datetime.fromtimestamp(timestamp, tz=UTC).date().isoformat()
