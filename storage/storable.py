"""Make a document BSON can hold, for the rare record that it refuses.

Request documents are built from what clients and the upstream sent; a value BSON
cannot encode (a lone surrogate in a string, an integer past 64 bits, a NUL in a
key) would otherwise fail the whole `insert_many` batch. Only used after an
encoding failure, so the common path pays nothing.
"""

from __future__ import annotations

import re
from typing import Any

INT64 = 2**63
_SURROGATE = re.compile("[\ud800-\udfff]")


def storable(value: Any) -> Any:
    if isinstance(value, str):
        return _text(value)
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value if -INT64 <= value < INT64 else str(value)
    if isinstance(value, dict):
        return {_key(k): storable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [storable(v) for v in value]
    return value


def _text(value: str) -> str:
    # Lone surrogates are the only str content UTF-8 cannot carry.
    return _SURROGATE.sub("\ufffd", value)


def _key(key: object) -> str:
    return _text(str(key)).replace("\x00", "\ufffd")
