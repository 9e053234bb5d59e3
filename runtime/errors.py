"""Every error Sanic itself raises (404, 405, 413, timeouts, crashes), in the shape
the path's clients read: the seed's `{"error", "details"}` on the dashboard API
(`/api`, `/api/*`), Anthropic's everywhere else (the SDKs parse it on `/v1/*`)."""

from __future__ import annotations

import logging
from http import HTTPStatus

from pymongo.errors import PyMongoError
from sanic import Request
from sanic.exceptions import RequestCancelled, SanicException
from sanic.handlers import ErrorHandler
from sanic.response import HTTPResponse

from runtime.settings import Settings
from streaming.errors import api_error_body, error_body, is_dashboard_api

logger = logging.getLogger("proxy")

# Enough of a hostile path to recognise it in an error, not a copy of all of it.
_PATH_CHARS = 200


class AnthropicErrorHandler(ErrorHandler):
    def __init__(self, settings: Settings) -> None:
        super().__init__()
        self._settings = settings

    def default(self, request: Request, exception: BaseException) -> HTTPResponse:
        status = (
            getattr(exception, "status_code", 500) if isinstance(exception, SanicException) else 500
        )
        path = str(getattr(request, "path", "") or "")
        api = is_dashboard_api(path)
        if api and _log_unreachable(exception):
            # The database behind the request log did not answer: the same 503 the
            # handlers give when there is no log, not a proxy fault worth a traceback.
            logger.warning("request log unreachable on %s %s: %r", request.method, path, exception)
            status = 503
        elif isinstance(exception, RequestCancelled):
            # The client went away mid-request: nobody reads this answer, and it
            # is not a proxy fault (the exchange is logged as client_closed).
            logger.debug("client closed %s %s", request.method, path)
        elif status >= 500:
            logger.error(
                "unhandled error on %s %s",
                getattr(request, "method", "?"),
                path or "?",
                exc_info=exception,
            )
        headers = dict(getattr(exception, "headers", None) or {})
        if api and status == 405 and not headers.get("Allow"):
            # Sanic names no methods for a route with a path parameter; a 405
            # must (RFC 9110), and the details repeat them.
            headers["Allow"] = ", ".join(_allowed_methods(request))
        if api:
            body = api_error_body(*self._api_error(request, exception, status, headers))
        else:
            body = error_body(status, self._message(exception, status))
        return HTTPResponse(body, status=status, headers=headers, content_type="application/json")

    def _message(self, exception: BaseException, status: int) -> str:
        """Anthropic's one `message`, as `/v1/*` clients have always received it."""
        if status == 413:
            return self._too_large()
        if isinstance(exception, RequestCancelled):
            return "Client closed the request"
        if status >= 500:
            return "Internal proxy error" if status == 500 else str(exception)
        return str(exception) or "Request rejected"

    def _api_error(
        self, request: Request, exception: BaseException, status: int, headers: dict[str, str]
    ) -> tuple[str, str]:
        """`(error, details)`: a short sentence, then what was asked and what to change."""
        method = str(getattr(request, "method", "") or "")
        path = str(getattr(request, "path", "") or "")[:_PATH_CHARS]
        if status == 503 and _log_unreachable(exception):
            return (
                "Request log unavailable",
                "The request log's database did not answer in time; try again shortly",
            )
        if status == 413:
            return "Request body too large", self._too_large()
        if status == 404:
            return "Not found", f"No dashboard API route matches {method} {path}"
        if status == 405:
            allowed = headers.get("Allow", "")
            return "Method not allowed", f"{method} is not allowed on {path}; allowed: {allowed}"
        if status == 408:
            said = str(exception)  # Sanic's own head timeout says only "Request Timeout"
            if not said or said == "Request Timeout":
                said = "The request was not received within REQUEST_READ_TIMEOUT"
            return "Request timed out", said
        if isinstance(exception, RequestCancelled):
            return "Client closed the request", f"{method} {path} was abandoned by the client"
        if status == 500:
            # Never the exception's text: it can carry internals (hosts, queries).
            return "Internal proxy error", "An unexpected error; the proxy's log has the details"
        return _phrase(status), str(exception) or _phrase(status)

    def _too_large(self) -> str:
        return f"Request body exceeds {self._settings.request_max_bytes} bytes (REQUEST_MAX_BYTES)"


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def _allowed_methods(request: Request) -> list[str]:
    """The methods the router takes on this request's path."""
    router = request.app.router
    host = request.headers.get("host")
    allowed = []
    for method in _METHODS:
        try:
            router.get(request.path, method, host)
        except Exception:  # NotFound, MethodNotAllowed; an error answer must not fail
            continue
        allowed.append(method)
    return allowed


def _log_unreachable(exception: BaseException) -> bool:
    # The repositories raise PyMongoError within the client's deadline (storage.mongo
    # connect), or TimeoutError when a read's own budget ran out.
    return isinstance(exception, PyMongoError | TimeoutError)


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Server error" if status >= 500 else "Request rejected"
