"""Every error the API answers, as JSON ``{"error": "<one line>", ...}`` with its status: the API's
own (:class:`ApiError`), invalid parameters (422, naming the parameter), a statement past the
timeout (503), HTTP errors, and anything unexpected (500, logged with its traceback)."""

from __future__ import annotations

import logging
from typing import Any

import psycopg
from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from weatherinsight.api.reads import jsonable

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An error answered as JSON: ``{"error": message, **extra}`` with ``status``."""

    def __init__(self, status: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.extra = extra


def error_answer(status_code: int, message: str, /, **extra: Any) -> JSONResponse:
    """A JSON error answer; ``extra`` fields may be named anything (``/health`` has its own ``status``)."""
    return JSONResponse(status_code=status_code, content={"error": message, **extra})


def first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


async def api_error(request: Request, error: ApiError) -> JSONResponse:
    return error_answer(error.status, error.message, **error.extra)


async def invalid(request: Request, error: RequestValidationError) -> JSONResponse:
    problems = [
        {"parameter": str(item["loc"][-1]), "message": item["msg"], "input": jsonable(item.get("input"))}
        for item in error.errors()
    ]
    first = problems[0] if problems else {"parameter": "?", "message": "invalid request"}
    return error_answer(
        422, f"invalid {first['parameter']}: {first['message']}", parameter=first["parameter"], problems=problems
    )


async def too_slow(request: Request, error: psycopg.errors.QueryCanceled) -> JSONResponse:
    log.warning("%s %s ran past the statement timeout", request.method, request.url.path)
    seconds = request.app.state.statement_timeout_ms / 1000
    return error_answer(503, f"the query ran past the API's statement timeout ({seconds:g} s): try again later")


async def unexpected(request: Request, error: Exception) -> JSONResponse:
    log.exception("%s %s failed", request.method, request.url.path)
    return error_answer(500, f"{type(error).__name__}: {first_line(error)}")


async def http_error(request: Request, error: HTTPException) -> JSONResponse:
    return error_answer(error.status_code, str(error.detail))


def install_handlers(app: FastAPI) -> None:
    """Answer every error of ``app`` as one JSON line."""
    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(psycopg.errors.QueryCanceled, too_slow)
    app.add_exception_handler(Exception, unexpected)
    app.add_exception_handler(HTTPException, http_error)
