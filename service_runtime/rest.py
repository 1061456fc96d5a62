"""The Quart side shared by both services: JSON responses, errors, health and metrics.

`install(app, ...)` gives a service's Quart app what both services answer the same way:
- every error as the gRPC-Gateway body `{"code", "message", "details"}` with the status from
  the service's `ErrorTable`; unknown exceptions are logged once and become 500;
- request bodies capped at `max_body_bytes` (413);
- `GET /healthz` (the process is alive), `GET /readyz` (its dependencies answer),
  `GET /metrics` (Prometheus);
- request counts and latencies per route template, method and status.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import grpc
from quart import Quart, Response, g, request
from werkzeug.exceptions import HTTPException

from service_runtime.error_table import ErrorTable, status_body
from service_runtime.errors import DomainError, InvalidArgument, Unavailable
from service_runtime.metrics import CONTENT_TYPE, Metrics
from service_runtime.protojson import dumps

log = logging.getLogger(__name__)

ReadinessCheck = Callable[[], Awaitable[bool]]

# HTTP statuses of framework errors (no route, wrong method, body too large...) as gRPC codes.
_HTTP_TO_GRPC = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    404: grpc.StatusCode.NOT_FOUND,
    405: grpc.StatusCode.UNIMPLEMENTED,
    413: grpc.StatusCode.INVALID_ARGUMENT,
    415: grpc.StatusCode.INVALID_ARGUMENT,
}


def json_response(payload: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    return Response(dumps(payload), status=status, headers=dict(headers or {}), content_type="application/json")


def error_response(status: int, code: grpc.StatusCode, message: str, reason: str, domain: str) -> Response:
    return json_response(status_body(code, message, reason, domain), status)


def install(
    app: Quart,
    *,
    errors: ErrorTable,
    metrics: Metrics,
    readiness: Mapping[str, ReadinessCheck],
    max_body_bytes: int,
) -> None:
    app.config["MAX_CONTENT_LENGTH"] = max_body_bytes
    # Routes are matched with and without a trailing slash alike; no redirects for APIs.
    app.url_map.strict_slashes = False

    @app.errorhandler(DomainError)
    async def _domain_error(error: DomainError) -> Response:
        status, body = errors.http_body(error)
        headers = {}
        if isinstance(error, Unavailable):
            headers["Retry-After"] = str(error.retry_after_seconds)
        return json_response(body, status, headers)

    @app.errorhandler(HTTPException)
    async def _http_error(error: HTTPException) -> Response:
        status = error.code or 500
        code = _HTTP_TO_GRPC.get(status, grpc.StatusCode.UNKNOWN)
        reason = "BODY_TOO_LARGE" if status == 413 else (error.name or "HTTP_ERROR").upper().replace(" ", "_")
        message = error.description or error.name
        if status == 413:
            message = f"request body is larger than {max_body_bytes} bytes"
        response = error_response(status, code, message, reason, errors.domain)
        if status == 405 and (allowed := getattr(error, "valid_methods", None)):
            response.headers["Allow"] = ", ".join(sorted(allowed))
        return response

    @app.errorhandler(Exception)
    async def _unexpected(error: Exception) -> Response:
        log.exception("unhandled error in %s %s", request.method, request.path, exc_info=error)
        return error_response(500, grpc.StatusCode.INTERNAL, "internal error", "INTERNAL", errors.domain)

    @app.before_request
    async def _start_timer() -> None:
        g.request_started = time.perf_counter()

    @app.after_request
    async def _observe(response: Response) -> Response:
        started = getattr(g, "request_started", None)
        rule = request.url_rule.rule if request.url_rule is not None else "unmatched"
        metrics.http_requests.labels(rule, request.method, str(response.status_code)).inc()
        if started is not None:
            metrics.http_latency.labels(rule, request.method).observe(time.perf_counter() - started)
        return response

    @app.get("/healthz")
    async def healthz() -> Response:
        return json_response({"status": "SERVING"})

    @app.get("/readyz")
    async def readyz() -> Response:
        results = {name: await check() for name, check in readiness.items()}
        ready = all(results.values())
        body = {
            "status": "SERVING" if ready else "NOT_SERVING",
            "checks": {k: "ok" if v else "failing" for k, v in results.items()},
        }
        return json_response(body, 200 if ready else 503)

    @app.get("/metrics")
    async def metrics_route() -> Response:
        return Response(metrics.exposition(), content_type=CONTENT_TYPE)


def query_params(*fields: str) -> dict[str, str]:
    """The request's query parameters by proto field name. Like gRPC-Gateway, a parameter may
    be spelled as the field's JSON name (pageSize) or proto name (page_size); any other
    parameter is a 400 naming it."""
    accepted = {_json_name(field): field for field in fields} | {field: field for field in fields}
    params: dict[str, str] = {}
    for key, value in request.args.items():
        if key not in accepted:
            raise InvalidArgument(key, "is not a parameter of this request")
        params[accepted[key]] = value
    return params


def int_param(params: Mapping[str, str], field: str, default: int = 0) -> int:
    raw = params.get(field)
    if raw is None or raw == "":
        return default
    try:
        return int(raw, 10)
    except ValueError:
        raise InvalidArgument(field, f"expected an integer, got {raw!r}") from None


def _json_name(field: str) -> str:
    head, *rest = field.split("_")
    return head + "".join(part.capitalize() for part in rest)


async def read_body() -> bytes:
    """The request body (413 past the app's MAX_CONTENT_LENGTH)."""
    return await request.get_data(cache=False, as_text=False, parse_form_data=False)
