"""One router per resource."""

from __future__ import annotations

from fastapi import APIRouter

from movierec.serve.routes import admin, health, movies, onboarding, predict, recommendations, users

ROUTERS: tuple[APIRouter, ...] = (
    health.router,
    movies.router,
    users.router,
    recommendations.router,
    predict.router,
    onboarding.router,
    admin.router,
)
