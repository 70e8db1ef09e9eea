"""``create_app(settings)``: the FastAPI app over one loaded run folder. It only builds the app; `movierec
serve` runs it on uvicorn."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator
from pathlib import Path

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from movierec import __version__
from movierec.errors import MovieRecError
from movierec.serve import errors
from movierec.serve.middleware import BodyLimit, TimeLimit
from movierec.serve.routes import ROUTERS
from movierec.serve.settings import Settings, load_settings
from movierec.serve.state import Loaded, ModelState, limit_blas_threads, load, settle_memory_for_reloads

STATIC_DIR = Path(__file__).parent / "static"
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
log = logging.getLogger("movierec.serve")


def create_app(settings: Settings, loaded: Loaded | None = None) -> FastAPI:
    """The service over ``settings.run_dir`` (or an already ``loaded`` run). The model is loaded here, once."""
    if loaded is None:
        if settings.run_dir is None:
            raise MovieRecError("No run folder is set; give RUN_DIR or set MOVIEREC_RUN_DIR.")
        loaded = load(settings.run_dir, min_ratings=settings.min_ratings)
    models = ModelState(loaded, settings.allowed_root if settings.run_dir else loaded.run_dir.parent,
                        min_ratings=settings.min_ratings)  # fmt: skip

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        hooked = settings.reload_on_sighup and _hook_sighup(models)
        yield
        if hooked:
            with contextlib.suppress(Exception):
                asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)

    app = FastAPI(
        title="movierec",
        version=__version__,
        summary="Movie recommendations from a trained movierec run: search, recommend, explain, predict.",
        lifespan=lifespan,
    )
    app.state.models = models
    app.state.settings = settings
    errors.install(app)
    for router in ROUTERS:
        app.include_router(router)

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", headers=PAGE_HEADERS)

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(TimeLimit, seconds=settings.request_timeout_s, exempt=("/admin/",))
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Content-Type"],
            max_age=600,
        )
    return app


def app_from_env() -> FastAPI:
    """uvicorn factory for worker processes: settings from ``MOVIEREC_*`` variables."""
    settings = load_settings()
    settle_memory_for_reloads()
    limit_blas_threads(settings.blas_threads)
    return create_app(settings)


def _hook_sighup(models: ModelState) -> bool:
    """Reload the current run folder from disk on SIGHUP (main thread only; elsewhere nothing is hooked)."""
    loop = asyncio.get_running_loop()

    async def reload() -> None:
        try:
            await asyncio.to_thread(models.reload)
        except MovieRecError as error:
            log.error("SIGHUP reload failed, still serving generation %d: %s", models.current.generation, error)

    def on_hup() -> None:
        task = loop.create_task(reload())
        _pending.add(task)
        task.add_done_callback(_pending.discard)

    try:
        loop.add_signal_handler(signal.SIGHUP, on_hup)
    except (ValueError, RuntimeError, NotImplementedError, AttributeError):
        return False
    return True


_pending: set[asyncio.Task[None]] = set()
