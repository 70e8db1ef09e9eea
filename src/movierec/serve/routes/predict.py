"""`POST /predict`: predicted stars for (user, movie) pairs, or for a new user's movies."""

from __future__ import annotations

from typing import Any

import numpy as np
from fastapi import APIRouter, Request

from movierec.serve.routes.common import check_ratings, current, responses
from movierec.serve.schemas import PredictIn, PredictOut

router = APIRouter(tags=["predictions"])


@router.post("/predict", response_model=PredictOut, responses=responses(413, 422))
async def predict(request: Request, body: PredictIn) -> dict[str, Any]:
    """Known users: ``{"pairs": [{"userId": 1, "movieId": 318}]}``. A new user: ``{"ratings": [...],
    "movieIds": [...]}``. Unknown users or movies fall back to the biases and the mean, flagged as unknown."""
    loaded = current(request)
    rec = loaded.recommender
    if body.pairs is not None:
        users = [pair.userId for pair in body.pairs]
        movies = [pair.movieId for pair in body.pairs]
        predictions = [p.to_dict() for p in rec.predict_pairs(users, movies)]
        return {"predictions": predictions, "ignored": []}
    assert body.ratings is not None and body.movieIds is not None  # the schema allows no other form
    pairs = check_ratings(loaded, body.ratings)
    folded = rec.fold_in(pairs)
    stars = rec.predict_new_user(pairs, body.movieIds)
    items = rec.item_vocab.index(np.asarray(body.movieIds, dtype=np.int64))
    known = (items >= 0) & rec.item_known[np.maximum(items, 0)]
    predictions = [
        {"userId": None, "movieId": m, "predicted_rating": s, "known_user": False, "known_movie": bool(k)}
        for m, s, k in zip(body.movieIds, stars, known, strict=True)
    ]
    return {"predictions": predictions, "ignored": folded.ignored}
