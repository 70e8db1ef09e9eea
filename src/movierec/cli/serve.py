"""`movierec serve RUN_DIR`: the HTTP service and web page on uvicorn."""

from __future__ import annotations

import errno
import math
import os
import socket
from pathlib import Path
from typing import Annotated, Any

import typer

from movierec.cli.console import make_console
from movierec.errors import MovieRecError
from movierec.serve.settings import Settings, load_settings
from movierec.serve.state import Loaded, limit_blas_threads, load, settle_memory_for_reloads

console = make_console(stderr=True)
LOG_LEVELS = ("critical", "error", "warning", "info", "debug")


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)


def serve(
    run_dir: Annotated[Path, typer.Argument(help="A run folder written by `movierec train`.")],
    host: Annotated[
        str | None, typer.Option(help="Address to listen on (default 127.0.0.1; env MOVIEREC_HOST).")
    ] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on (default 8000; env MOVIEREC_PORT).")] = None,
    workers: Annotated[int | None, typer.Option(help="Worker processes, each holding the model (default 1).")] = None,
    cors_origin: Annotated[
        list[str] | None, typer.Option(help="An origin allowed to call the API from a browser (repeatable).")
    ] = None,
    max_body_bytes: Annotated[int | None, typer.Option(help="Largest request body in bytes (default 65536).")] = None,
    timeout: Annotated[
        float | None, typer.Option(help="Longest time one request may take, in seconds (default 10).")
    ] = None,
    runs_root: Annotated[
        Path | None,
        typer.Option(help="Folder POST /admin/reload may load runs from (default: the run folder's parent)."),
    ] = None,
    blas_threads: Annotated[int | None, typer.Option(help="BLAS threads per worker (default 1).")] = None,
    access_log: Annotated[bool | None, typer.Option("--access-log/--no-access-log", help="Log each request.")] = None,
    log_level: Annotated[str, typer.Option(help="critical, error, warning, info or debug.")] = "info",
) -> None:
    """Serve recommendations over HTTP (API docs at /docs) with a web page at /. The admin token for
    POST /admin/reload comes only from MOVIEREC_ADMIN_TOKEN; SIGHUP reloads the run folder from disk."""
    if log_level not in LOG_LEVELS:
        raise MovieRecError(f"--log-level {log_level!r} is not valid; use one of: {', '.join(LOG_LEVELS)}.")
    settings = load_settings(
        run_dir=run_dir,
        host=host,
        port=port,
        workers=workers,
        cors_origins=cors_origin or None,
        max_body_bytes=max_body_bytes,
        request_timeout_s=timeout,
        runs_root=runs_root,
        blas_threads=blas_threads,
        access_log=access_log,
    )
    assert settings.run_dir is not None
    settle_memory_for_reloads()
    limit_blas_threads(settings.blas_threads)
    loaded = load(settings.run_dir, min_ratings=settings.min_ratings)  # a bad folder stops here, exit 2
    _check_port_free(settings.host, settings.port)
    console.print(
        f"movierec: serving {loaded.model} from {loaded.run_dir} ({loaded.recommender.catalog.n_items:,} movies) "
        f"at http://{_url_host(settings.host)}:{settings.port}/ (API docs at /docs)"
    )
    _run(settings, loaded, log_level)


def _run(settings: Settings, loaded: Loaded, log_level: str) -> None:
    import uvicorn  # here, with FastAPI: `movierec --help` and the other commands need neither

    from movierec.serve.app import create_app

    common: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "log_level": log_level,
        "access_log": settings.access_log,
        "timeout_keep_alive": max(1, math.ceil(settings.keep_alive_s)),
        "timeout_graceful_shutdown": max(1, math.ceil(settings.graceful_shutdown_s)),
        "limit_concurrency": settings.max_concurrency,
        "server_header": False,
    }
    if settings.workers == 1:
        uvicorn.run(create_app(settings, loaded), **common)
        return
    os.environ.update(settings.to_env())  # each worker rebuilds the settings and loads the model once
    del loaded
    uvicorn.run("movierec.serve.app:app_from_env", factory=True, workers=settings.workers, **common)


def _check_port_free(host: str, port: int) -> None:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror:
        raise MovieRecError(f"The host {host!r} does not resolve; give an address like 127.0.0.1 or 0.0.0.0.") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                raise MovieRecError(f"The port {port} on {host} is already in use; pick another with --port.") from None
            raise MovieRecError(
                f"Cannot listen on {host}:{port} ({error.strerror}); pick another --host or --port."
            ) from None


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
