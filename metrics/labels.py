"""Bounded label values: a client controls the path and the model string."""

from __future__ import annotations

import re

KNOWN_ENDPOINTS = frozenset(
    {"/v1/messages", "/v1/messages/count_tokens", "/v1/models", "/v1/messages/batches"}
)
# Model ids look like `claude-sonnet-4-5-20250929`; anything else is folded.
_MODEL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/@-]{0,79}$")
MAX_MODELS = 100


class ModelLabels:
    """Keeps at most MAX_MODELS distinct model labels per process; later ones are "other"."""

    def __init__(self, limit: int = MAX_MODELS) -> None:
        self._seen: set[str] = set()
        self._limit = limit

    def __call__(self, model: str | None) -> str:
        if not model:
            return "none"
        if not _MODEL_RE.match(model):
            return "invalid"
        if model in self._seen:
            return model
        if len(self._seen) >= self._limit:
            return "other"
        self._seen.add(model)
        return model


def endpoint_label(path: str) -> str:
    path = path.rstrip("/") or "/"
    return path if path in KNOWN_ENDPOINTS else "/v1/other"


def status_class(status: int | None) -> str:
    return f"{status // 100}xx" if status else "none"
