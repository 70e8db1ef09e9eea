"""Where movierec keeps downloaded releases and parsed caches."""

from __future__ import annotations

import os
from pathlib import Path

EMBEDDED_DIR = Path(__file__).parent / "embedded"


def home() -> Path:
    """The movierec data folder: ``$MOVIEREC_HOME``, else ``~/.cache/movierec``."""
    configured = os.environ.get("MOVIEREC_HOME")
    return Path(configured) if configured else Path.home() / ".cache" / "movierec"


def datasets_dir() -> Path:
    return home() / "datasets"


def cache_dir() -> Path:
    return home() / "cache"
