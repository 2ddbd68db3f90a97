"""The FastAPI application: routes over ``update()``, ``algorithm.run()``, Tune and meals.

Status codes: 200 with the library's answer; 400 when the body is not JSON (or nested too deeply);
401 without the right bearer token; 413 for a body over the size limit; 422 when the JSON is
well formed but not what the route takes (not an object, a required field missing) or the
library rejects it (``InvalidInputError`` or ``MissingDataError``, every problem listed); 501
when the route's wing (``pyloopkit.tune``, ``pyloopkit.meals``) is not installed. Errors always have the body ``{"error": ..., "problems": [{field, index, value,
reason}]}`` and never a traceback.
"""
from __future__ import annotations

import importlib
import importlib.util
import logging
from typing import Any

try:
    from fastapi import Body, Depends, FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from fastapi.security import HTTPBearer
    from starlette.exceptions import HTTPException
except ImportError as e:  # pragma: no cover - depends on the installation
    raise ImportError(f"the HTTP service needs FastAPI: pip install 'pyloopkit[service]' ({e})") from e

from .. import __version__
from ..errors import InvalidInputError, MissingDataError, Problem
from .guard import DEFAULT_MAX_BODY_BYTES, Guard
from .models import ErrorResponse, HealthResponse, MealLogRequest, MealParseRequest
from .problems import error_body, validation_problems

WINGS = {"tune": "pyloopkit.tune", "meals": "pyloopkit.meals"}
"""Optional wings whose routes this service offers, by name."""

ERRORS = {code: {"model": ErrorResponse} for code in (400, 401, 413, 422)}
WING_ERRORS = {**ERRORS, 501: {"model": ErrorResponse}}

log = logging.getLogger(__name__)


class WingUnavailable(Exception):
    """The route's wing cannot be imported here (answered 501)."""


def wing_function(wing: str, name: str):
    """``pyloopkit.<wing>.<name>``, imported when the route is called; :class:`WingUnavailable` if absent."""
    module = WINGS[wing]
    try:
        found = getattr(importlib.import_module(module), name, None)
    except ImportError as e:
        raise WingUnavailable(f"{module} is not available in this installation ({e})") from None
    if found is None:
        raise WingUnavailable(f"{module} has no {name}() in this installation")
    return found


def _wing_present(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ImportError:
        return False


def decode_input_dict(data: dict) -> dict:
    """The ``update()`` input dictionary from its JSON form (ISO dates, ``HH:MM:SS`` times, type names)."""
    from ..pyloop_parser import parse_dictionary_from_previous_run

    return parse_dictionary_from_previous_run(data)


def json_ready(value: Any) -> Any:
    """Datetimes as ISO 8601, times as ``HH:MM:SS``, dose types by name, tuples as lists."""
    from ..pyloop_parser import input_dict_to_json

    return input_dict_to_json({"v": value})["v"]


def _error(status: int, error: str, problems=()) -> JSONResponse:
    return JSONResponse(error_body(error, problems), status_code=status)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(InvalidInputError)
    async def invalid_input(request: Request, exc: InvalidInputError):
        return _error(422, "invalid input", exc.problems)

    @app.exception_handler(MissingDataError)
    async def missing_data(request: Request, exc: MissingDataError):
        return _error(422, "missing data", [Problem("", None, None, str(exc))])

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError):
        errors = list(exc.errors())
        if any(e.get("type") == "json_invalid" for e in errors):
            return _error(400, "the body is not valid JSON", validation_problems(errors))
        return _error(422, "invalid request", validation_problems(errors))

    @app.exception_handler(WingUnavailable)
    async def wing_unavailable(request: Request, exc: WingUnavailable):
        return _error(501, str(exc))

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException):
        return JSONResponse(error_body(str(exc.detail)), status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def internal(request: Request, exc: Exception):
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return _error(500, "internal error (logged on the server)")


def _add_loop_routes(app: FastAPI, dependencies: list) -> None:
    @app.post("/loop/update", tags=["loop"], responses=ERRORS, dependencies=dependencies,
              summary="Run update() on a PyLoopKit input dictionary")
    def loop_update(input_dict: dict[str, Any] = Body(
            description="PyLoopKit input dictionary (docs/update.md); dates as ISO 8601 strings, "
                        "schedule times as HH:MM:SS, dose types by name")) -> JSONResponse:
        """``update()``'s output without ``input_data``: dates as ISO 8601 strings in the zone of
        ``time_to_calculate_at``, glucose mg/dL, insulin U and U/h, carbs g."""
        from ..loop_data_manager import update

        out = update(decode_input_dict(input_dict))
        out.pop("input_data", None)
        return JSONResponse(json_ready(out))

    @app.post("/loop/run", tags=["loop"], responses=ERRORS, dependencies=dependencies,
              summary="Run the current Loop algorithm on a LoopAlgorithm AlgorithmInput")
    def loop_run(algorithm_input: dict[str, Any] = Body(
            description="LoopAlgorithm AlgorithmInput (docs/algorithm.md)")) -> JSONResponse:
        """``pyloopkit.algorithm.run``'s output (LoopAlgorithm's layout); refusals come back in ``errors``."""
        from ..algorithm import run

        return JSONResponse(run(algorithm_input))


def _add_wing_routes(app: FastAPI, dependencies: list) -> None:
    @app.post("/tune/{model}", tags=["tune"], responses=WING_ERRORS, dependencies=dependencies,
              summary="Estimate basal, carb ratio and ISF schedules from a Tune v1 request")
    def tune(model: str, request: dict[str, Any] = Body(
            description="Tune's version 1 request (delta-encoded timelines, current schedules)")) -> JSONResponse:
        """Tune's version 1 response: the estimated schedules and the training loss."""
        answer = wing_function("tune", "answer")
        return JSONResponse(json_ready(answer(request, model=model)))

    @app.post("/meals/parse", tags=["meals"], responses=WING_ERRORS, dependencies=dependencies,
              summary="Foods, portions and carbs from a sentence")
    def meals_parse(meal: MealParseRequest) -> JSONResponse:
        """``pyloopkit.meals.parse(text, at).to_dict()``."""
        parse = wing_function("meals", "parse")
        return JSONResponse(json_ready(parse(meal.text, at=meal.at).to_dict()))

    @app.post("/meals/log", tags=["meals"], responses=WING_ERRORS, dependencies=dependencies,
              summary="Add a meal in words to an input dictionary and run update()")
    def meals_log(meal: MealLogRequest) -> JSONResponse:
        """``pyloopkit.meals.log``: the parse, the carb entries added, the predicted peak and the bolus."""
        log_meal = wing_function("meals", "log")
        return JSONResponse(json_ready(log_meal(meal.text, decode_input_dict(meal.input_dict), at=meal.at)))


def create_app(token: str | None = None, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> FastAPI:
    """The service application.

    Parameters
    ----------
    token : str, optional
        When given, every route except ``/health`` and the docs needs ``Authorization: Bearer <token>``.
    max_body_bytes : int
        Largest request body accepted (bytes); larger ones are answered 413.
    """
    if max_body_bytes <= 0:
        raise ValueError(f"max_body_bytes must be positive, got {max_body_bytes}")
    app = FastAPI(title="pyloopkit", version=__version__,
                  description="The Loop algorithm, therapy-settings estimation and meal logging over HTTP. "
                              "Errors: `{error, problems: [{field, index, value, reason}]}`.")
    _install_error_handlers(app)

    @app.get("/health", response_model=HealthResponse, tags=["service"])
    def health() -> HealthResponse:
        """Liveness; lists which wings are installed (their routes answer 501 otherwise)."""
        return HealthResponse(version=__version__, wings={w: _wing_present(m) for w, m in WINGS.items()})

    # The Guard checks the token; this declares it in the OpenAPI schema (the Authorize button of /docs).
    dependencies = [] if token is None else [Depends(HTTPBearer(auto_error=False))]
    _add_loop_routes(app, dependencies)
    _add_wing_routes(app, dependencies)
    app.add_middleware(Guard, token=token, max_body_bytes=max_body_bytes)
    return app
