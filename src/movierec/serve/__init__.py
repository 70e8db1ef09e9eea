"""The HTTP service: a FastAPI app over one loaded run, with a web page at ``/``.

``create_app(settings)`` builds it; `movierec serve RUN_DIR` runs it on uvicorn.
"""

from movierec.serve.app import create_app
from movierec.serve.settings import Settings, load_settings

__all__ = ["Settings", "create_app", "load_settings"]
