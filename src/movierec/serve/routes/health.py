"""`GET /health`: which model is loaded, and how big it is."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from movierec import __version__
from movierec.serve.routes.common import current
from movierec.serve.schemas import HealthOut

router = APIRouter(tags=["health"])


@router.get("/health", response_model=HealthOut)
async def health(request: Request) -> dict[str, Any]:
    """The loaded model's name, the movierec version, the catalog size and the rating scale."""
    loaded = current(request)
    rec = loaded.recommender
    p = rec.model.params
    return {
        "status": "ok",
        "model": loaded.model,
        "version": __version__,
        "run": loaded.run_dir.name,
        "generation": loaded.generation,
        "loaded_at": loaded.loaded_at,
        "catalog_size": rec.catalog.n_items,
        "n_users": int(rec.user_known.sum()),
        "dim": p.dim,
        "scale_low": p.low,
        "scale_high": p.high,
        "genres": list(rec.genres),
    }
