"""The HTTP service: a FastAPI app over one loaded run, with a web page at ``/``.

``create_app(settings)`` builds it; `movierec serve RUN_DIR` runs it on uvicorn. FastAPI is imported only when
``create_app`` is first asked for, so the CLI reads ``serve.forms`` and ``serve.settings`` without paying for it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from movierec.serve.settings import Settings, load_settings

if TYPE_CHECKING:
    from movierec.serve.app import create_app

__all__ = ["Settings", "create_app", "load_settings"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from movierec.serve.app import create_app

        return create_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
