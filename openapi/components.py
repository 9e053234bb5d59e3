"""Shared schemas, registered as named OpenAPI components (names follow the seed).

`ErrorResponse` deliberately differs from the seed's `{error, details}`: every
error the proxy writes uses Anthropic's own error shape, so SDK clients parse
and retry proxy errors exactly like upstream ones.
"""

from __future__ import annotations

from dataclasses import dataclass

from sanic_ext import openapi


@openapi.component
@dataclass
class ErrorDetail:
    type: str
    message: str


@openapi.component
@dataclass
class ErrorResponse:
    type: str
    error: ErrorDetail
    request_id: str | None = None


@openapi.component
@dataclass
class HealthResponse:
    status: str
    timestamp: str


@openapi.component
@dataclass
class DrainingResponse:
    status: str
    timestamp: str
    in_flight: int


@openapi.component
@dataclass
class LivezResponse:
    status: str
    in_flight: int
    worker_in_flight: int
    draining: bool
    timestamp: str


@openapi.component
@dataclass
class HeaderRule:
    header: str
    action: str  # block | set | replace
    value: str | None = None
    find: str | None = None
    enabled: bool = True


@openapi.component
@dataclass
class ProxySettings:
    requestHeaderRules: list[HeaderRule]
    responseHeaderRules: list[HeaderRule]
