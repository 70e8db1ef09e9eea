"""`POST /admin/reload`: swap in a run folder without dropping a request (bearer token from the environment)."""

from __future__ import annotations

import asyncio
import hmac
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from movierec.errors import MovieRecError
from movierec.serve.errors import field_error
from movierec.serve.routes.common import responses
from movierec.serve.schemas import ReloadIn, ReloadOut
from movierec.serve.settings import Settings
from movierec.serve.state import ModelState, ReloadBusy

router = APIRouter(tags=["admin"])
bearer = HTTPBearer(auto_error=False, description="The token in MOVIEREC_ADMIN_TOKEN.")


def require_admin(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> None:
    """401 without a bearer token, 403 with a wrong one or when no token is configured."""
    settings: Settings = request.app.state.settings
    if settings.admin_token is None:
        raise HTTPException(403, "Admin calls are disabled; start the service with MOVIEREC_ADMIN_TOKEN set.")
    if credentials is None:
        raise HTTPException(
            401, "This call needs the admin token: send Authorization: Bearer <token>.", {"WWW-Authenticate": "Bearer"}
        )
    expected = settings.admin_token.get_secret_value().encode()
    if not hmac.compare_digest(credentials.credentials.encode(), expected):
        raise HTTPException(403, "The admin token is wrong.")


@router.post(
    "/admin/reload",
    response_model=ReloadOut,
    responses=responses(401, 403, 409, 413, 422),
    dependencies=[Depends(require_admin)],
)
async def reload(request: Request, body: ReloadIn | None = None) -> dict[str, Any]:
    """Load a run folder (default: the current one, read again from disk) and swap it in. Requests in flight
    finish on the old model; the old model keeps serving if the new folder cannot be loaded."""
    settings: Settings = request.app.state.settings
    if settings.workers > 1:
        raise HTTPException(
            409,
            f"This service runs {settings.workers} worker processes and one of them cannot swap the others; "
            "send SIGHUP to the main process to reload them all.",
        )
    models: ModelState = request.app.state.models
    try:
        previous, loaded = await asyncio.to_thread(models.reload, body.run_dir if body else None)
    except ReloadBusy as error:
        raise HTTPException(409, str(error)) from None
    except MovieRecError as error:
        raise field_error(("body", "run_dir"), f"body.run_dir: {str(error).rstrip('.')}") from None
    return {
        "model": loaded.model,
        "run": loaded.run_dir.name,
        "generation": loaded.generation,
        "previous_generation": previous.generation,
        "seconds": round(loaded.load_seconds, 3),
    }
