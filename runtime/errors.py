"""Every error Sanic itself raises (404, 405, 413, timeouts, crashes) in Anthropic's shape."""

from __future__ import annotations

import logging

from sanic import Request
from sanic.exceptions import RequestCancelled, SanicException
from sanic.handlers import ErrorHandler
from sanic.response import HTTPResponse

from runtime.settings import Settings
from streaming.errors import error_body

logger = logging.getLogger("proxy")


class AnthropicErrorHandler(ErrorHandler):
    def __init__(self, settings: Settings) -> None:
        super().__init__()
        self._settings = settings

    def default(self, request: Request, exception: BaseException) -> HTTPResponse:
        status = (
            getattr(exception, "status_code", 500) if isinstance(exception, SanicException) else 500
        )
        if status == 413:
            message = (
                f"Request body exceeds {self._settings.request_max_bytes} bytes (REQUEST_MAX_BYTES)"
            )
        elif isinstance(exception, RequestCancelled):
            # The client went away mid-request: nobody reads this answer, and it
            # is not a proxy fault (the exchange is logged as client_closed).
            logger.debug("client closed %s %s", request.method, request.path)
            message = "Client closed the request"
        elif status >= 500:
            logger.error(
                "unhandled error on %s %s",
                getattr(request, "method", "?"),
                getattr(request, "path", "?"),
                exc_info=exception,
            )
            message = "Internal proxy error" if status == 500 else str(exception)
        else:
            message = str(exception) or "Request rejected"
        headers = getattr(exception, "headers", None) or {}
        return HTTPResponse(
            error_body(status, message),
            status=status,
            headers=headers,
            content_type="application/json",
        )
