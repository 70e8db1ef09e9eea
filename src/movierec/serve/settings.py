"""Service settings: from `movierec serve` flags or ``MOVIEREC_*`` environment variables (flags win).

Every limit the service enforces lives here, with a default that is safe to expose on a network.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from movierec.errors import MovieRecError
from movierec.recommend.filters import DEFAULT_MIN_RATINGS
from movierec.serve.schemas import MAX_MIN_RATINGS

ENV_PREFIX = "MOVIEREC_"
FLAGS = {
    "run_dir": "RUN_DIR",
    "host": "--host",
    "port": "--port",
    "workers": "--workers",
    "cors_origins": "--cors-origin",
    "max_body_bytes": "--max-body-bytes",
    "request_timeout_s": "--timeout",
    "runs_root": "--runs-root",
    "access_log": "--access-log",
    "blas_threads": "--blas-threads",
}
"""The `movierec serve` flag of each setting that has one."""


class Settings(BaseSettings):
    """How the HTTP service runs. Environment variables are the field names upper-cased after ``MOVIEREC_``
    (``MOVIEREC_RUN_DIR``, ``MOVIEREC_PORT``, ``MOVIEREC_CORS_ORIGINS="https://a.example,https://b.example"``,
    ``MOVIEREC_ADMIN_TOKEN`` ...)."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    run_dir: Path | None = Field(default=None, description="The run folder to serve.")
    host: str = Field(default="127.0.0.1", min_length=1, max_length=255)
    port: int = Field(default=8000, ge=1, le=65535)
    workers: int = Field(default=1, ge=1, le=64, description="uvicorn worker processes.")
    runs_root: Path | None = Field(
        default=None,
        description="The folder `POST /admin/reload` may load run folders from (default: the run folder's parent).",
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Origins allowed to call the API from a browser; empty: CORS off."
    )
    max_body_bytes: int = Field(default=64 * 1024, ge=1024, le=16 * 1024 * 1024, description="Largest request body.")
    request_timeout_s: float = Field(default=10.0, gt=0, le=600, description="Longest time one request may take.")
    keep_alive_s: float = Field(default=5.0, gt=0, le=300, description="Idle keep-alive connections close after this.")
    max_concurrency: int = Field(default=512, ge=1, le=100_000, description="Open connections before answering 503.")
    graceful_shutdown_s: float = Field(default=10.0, gt=0, le=600, description="Time in-flight requests get on stop.")
    blas_threads: int = Field(
        default=1,
        ge=1,
        le=256,
        description="BLAS threads per worker. One request's work is a memory-bound matrix-vector product; more "
        "threads barely speed it up and stall badly when the cores are busy, so workers, not threads, use cores.",
    )
    min_ratings: int = Field(
        default=DEFAULT_MIN_RATINGS, ge=0, le=MAX_MIN_RATINGS, description="Default minimum support of listed movies."
    )
    admin_token: SecretStr | None = Field(
        default=None, description="Bearer token for `POST /admin/reload`; unset: the admin endpoint is disabled."
    )
    reload_on_sighup: bool = Field(default=True, description="Reload the run folder when the process gets SIGHUP.")
    access_log: bool = Field(default=False, description="Log one line per request.")

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("cors_origins")
    @classmethod
    def _check_origins(cls, value: list[str]) -> list[str]:
        for origin in value:
            if origin != "*" and not origin.startswith(("http://", "https://")):
                raise ValueError(f"the CORS origin {origin!r} is not * or an http(s):// origin")
        return value

    @field_validator("admin_token")
    @classmethod
    def _check_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 16:
            raise ValueError("the admin token must be at least 16 characters long")
        return value

    @property
    def allowed_root(self) -> Path:
        """The folder reloads may load from."""
        if self.runs_root is not None:
            return self.runs_root.resolve()
        if self.run_dir is None:
            raise MovieRecError("No run folder is set; give RUN_DIR or set MOVIEREC_RUN_DIR.")
        return self.run_dir.resolve().parent

    def to_env(self) -> dict[str, str]:
        """The settings as ``MOVIEREC_*`` variables, for worker processes that rebuild them from the environment."""
        env: dict[str, str] = {}
        for name, value in self.model_dump(exclude_none=True).items():
            key = ENV_PREFIX + name.upper()
            if isinstance(value, SecretStr):
                env[key] = value.get_secret_value()
            elif isinstance(value, list):
                env[key] = ",".join(value)
            elif isinstance(value, bool):
                env[key] = "true" if value else "false"
            else:
                env[key] = str(value)
        return env


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment with ``overrides`` (CLI flags; ``None`` means not given) on top.

    Invalid values raise ``MovieRecError`` naming the setting and what is valid."""
    given = {key: value for key, value in overrides.items() if value is not None}
    try:
        return Settings(**given)
    except ValidationError as error:
        first = error.errors()[0]
        name = ".".join(str(part) for part in first["loc"]) or "settings"
        where = ENV_PREFIX + name.upper()
        if name in FLAGS:
            where = f"{FLAGS[name]} or {where}"
        shown = "(hidden)" if name == "admin_token" else repr(first.get("input"))
        reason = str(first["msg"]).removeprefix("Value error, ")
        raise MovieRecError(f"The setting {name} ({where}) = {shown} is not valid: {reason}.") from None
