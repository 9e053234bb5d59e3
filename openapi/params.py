"""Query and path parameter schemas that say exactly what handlers.params accepts, so
generated clients and schema-driven tests send what the handlers take."""

from __future__ import annotations

from typing import Any

from sanic_ext.extensions.openapi.types import Schema

from openapi.integers import INT32_MAX

# text_param refuses control characters.
PRINTABLE = r"^[^\x00-\x1f]*$"


def text(max_length: int = 200, **extra: Any) -> Schema:
    return Schema(type="string", maxLength=max_length, pattern=PRINTABLE, **extra)


# datetime_param: ISO 8601 (offset or Z; naive means UTC) or epoch milliseconds. The
# stats routes also take a bare date (midnight in `tz`).
_ISO = {"type": "string", "format": "date-time"}
_EPOCH_MS = {"type": "string", "pattern": r"^-?[0-9]{1,13}$", "description": "epoch ms"}
# Grafana sends an unset variable as an empty value: it means "not given".
_EMPTY = {"type": "string", "maxLength": 0, "description": "empty: not given"}
_DATE = {"type": "string", "format": "date"}
DATE_TIME = Schema(anyOf=[_ISO, _EPOCH_MS, _EMPTY])
DATE_TIME_OR_DATE = Schema(anyOf=[_ISO, _EPOCH_MS, _DATE, _EMPTY])
REQUIRED_DATE_TIME_OR_DATE = Schema(anyOf=[_ISO, _EPOCH_MS, _DATE])


def integer(default: int, minimum: int, maximum: int) -> Schema:
    bounded = {"type": "integer", "format": _width(minimum, maximum)}
    return Schema(
        anyOf=[{**bounded, "minimum": minimum, "maximum": maximum}, _EMPTY],
        default=default,
    )


def one_of(values: list[int], default: int) -> Schema:
    kind = {"type": "integer", "format": _width(min(values), max(values))}
    return Schema(anyOf=[{**kind, "enum": values}, _EMPTY], default=default)


def _width(minimum: int, maximum: int) -> str:
    return "int32" if -INT32_MAX - 1 <= minimum and maximum <= INT32_MAX else "int64"
