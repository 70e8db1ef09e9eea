"""Every error the service answers has one shape, ``{"detail": "...", "errors": [...]}``, and says what is
wrong and what would be valid: 422 for bad input (naming the field and its valid range), 404 for unknown
ids in a path, 413 for oversized bodies, 401/403 for admin calls without the right token."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from movierec.errors import MovieRecError
from movierec.serve.schemas import RANGES

_BOUND_TYPES = {"greater_than_equal", "less_than_equal", "greater_than", "less_than"}
_NUMBER_TYPES = {"int_parsing", "int_type", "int_from_float", "float_parsing", "float_type", "finite_number"}
MAX_SHOWN = 40
_MESSAGES = {
    "too_long": "{field} may hold at most {max_length} items; got {actual_length}",
    "too_short": "{field} must hold at least {min_length} item(s); got {actual_length}",
    "string_too_long": "{field} may be at most {max_length} characters long",
    "string_too_short": "{field} must be at least {min_length} character(s) long",
    "missing": "{field} is required",
    "extra_forbidden": "{field} is not a field of this request",
    "json_invalid": "The body is not valid JSON ({error})",
    "model_attributes_type": "{field} must be a JSON object",
    "dict_type": "{field} must be a JSON object",
    "model_type": "{field} must be a JSON object",
    "list_type": "{field} must be a JSON list",
}
"""One sentence per pydantic error type, filled from the error's context (and ``field``, where it is)."""


def field_error(loc: Sequence[str | int], message: str, kind: str = "value_error") -> RequestValidationError:
    """A 422 for one field, in the same shape as pydantic's own errors (raise it from a route)."""
    return RequestValidationError([{"loc": tuple(loc), "msg": message, "type": kind, "ctx": {"full": True}}])


def describe(error: dict[str, Any]) -> str:
    """One sentence for one pydantic error: the field, what is wrong, and what would be valid."""
    loc = [str(part) for part in error.get("loc", ())]
    field = ".".join(loc) or "body"
    name = next((part for part in reversed(loc) if not part.isdigit()), field)
    kind = str(error.get("type", ""))
    ctx = error.get("ctx") or {}
    message = str(error.get("msg", "is not valid"))
    shown = _shown(error.get("input"))
    if ctx.get("full"):
        return message
    if name in RANGES and (kind in _BOUND_TYPES or kind in _NUMBER_TYPES):
        low, high = RANGES[name]
        return f"{field} must be a number from {_number(low)} to {_number(high)}; got {shown}"
    if kind in _MESSAGES:
        # a context value pydantic left out reads "None" (an error handler must not raise a KeyError)
        values = defaultdict(lambda: "None", {"error": "parse error", **ctx, "field": field})
        return _MESSAGES[kind].format_map(values)
    if kind == "value_error":
        return f"{field}: {message.removeprefix('Value error, ')}"
    return f"{field}: {message}; got {shown}"


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= MAX_SHOWN else text[: MAX_SHOWN - 3] + "..."


def validation_body(errors: Sequence[dict[str, Any]]) -> dict[str, Any]:
    described = [
        {
            "field": ".".join(str(p) for p in e.get("loc", ())) or "body",
            "message": describe(e),
            "type": str(e.get("type", "")),
        }
        for e in errors
    ]
    listed = [d["message"] for d in described[:5]]
    more = f" (and {len(described) - 5} more problems)" if len(described) > 5 else ""
    detail = "; ".join(listed) + more
    return {"detail": detail + ".", "errors": described}


async def _on_validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return JSONResponse(validation_body(exc.errors()), status_code=422)


FASTAPI_BODY_ERROR = "There was an error parsing the body"


async def _on_http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 400 and exc.detail == FASTAPI_BODY_ERROR:  # e.g. bytes that are not UTF-8
        error: dict[str, Any] = {"loc": ("body",), "msg": "The body is not JSON: send UTF-8 encoded JSON"}
        error.update(type="json_invalid", ctx={"full": True})
        return JSONResponse(validation_body([error]), status_code=422)
    detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    return JSONResponse({"detail": detail}, status_code=exc.status_code, headers=exc.headers)


async def _on_movierec(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status_code=422)


def install(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(HTTPException, _on_http)
    app.add_exception_handler(MovieRecError, _on_movierec)
