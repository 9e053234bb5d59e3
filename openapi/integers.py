"""Number widths in the OpenAPI document.

sanic-ext types every Python `int` as `format: int32` and ignores a field's own
`format`. Token totals, epoch-millisecond times (`ts`), byte counts, request counts
and durations in milliseconds all pass 2^31 on a busy deployment (a month of Claude
Code traffic is billions of tokens; `ts` is ~1.8e12 today), and a generated client
decoding them as 32-bit integers overflows or refuses the response. So the rule is
the other way round: every integer is `int64`, except the names listed in
INT32_FIELDS, whose values are bounded by construction. Likewise sanic-ext types a
`float` as `format: float` (32 bits: seven digits, too few for a month's cost in
USD); every number is `double`.
"""

from __future__ import annotations

from typing import Any

INT32_MAX = 2**31 - 1

# Property names that stay int32, and why their values cannot reach 2^31.
INT32_FIELDS: dict[str, str] = {
    "statusCode": "an HTTP status: three digits",
    "hour": "an hour of the day, 0-23",
    "bucket": "a bucket width in minutes, one of a fixed list (at most a day)",
    "page": "echoes the `page` query parameter (at most 1,000,000)",
    "limit": "echoes the `limit` query parameter (at most 10,000)",
    "offset": "echoes the `offset` query parameter (at most 10,000,000)",
    "in_flight": "requests in flight in one server (bounded by its connections)",
    "worker_in_flight": "requests in flight in one worker",
    "index": "a turn's position in one conversation (stored turns are capped)",
    "segment": "a history segment of one conversation (bounded like `index`)",
    "schemaVersion": "the stored document format version (a small constant)",
}


def integer_format(name: str | None) -> str:
    return "int32" if name in INT32_FIELDS else "int64"


def set_number_formats(schema: Any, name: str | None = None) -> None:
    """Give every integer and number in `schema` its format, in place. `name` is the property
    the schema describes; array items, map values and `oneOf`/`anyOf`/`allOf`
    branches describe the same property. Works on sanic-ext's schema objects and
    on plain dicts alike (finish.py mixes both)."""
    values = _values(schema)
    if not isinstance(values, dict):
        return
    if values.get("type") == "integer":
        values["format"] = integer_format(name)
    elif values.get("type") == "number":
        values["format"] = "double"
    for key, sub in (_values(values.get("properties")) or {}).items():
        set_number_formats(sub, key)
    for key in ("items", "additionalProperties", "not"):
        if key in values:
            set_number_formats(values[key], name)
    for key in ("oneOf", "anyOf", "allOf"):
        for branch in values.get(key) or ():
            set_number_formats(branch, name)


def _values(schema: Any) -> Any:
    return schema._fields if hasattr(schema, "_fields") else schema
