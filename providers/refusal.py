"""Why a Messages request cannot go to an OpenAI-format backend.

A translation that quietly leaves out what the client asked for (a tool, an image, a
sampling setting) makes the backend answer a different question; so whatever has no
Chat Completions equivalent is refused, and the caller answers 400
`invalid_request_error` with `message`, which names it.
"""

from __future__ import annotations


class RequestRefused(ValueError):
    """The request cannot be translated; `message` is what the client is told."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Unsupported(RequestRefused):
    """A feature of the request the backend cannot express; `feature` names it."""

    def __init__(self, feature: str) -> None:
        super().__init__(
            f"{feature} cannot be sent to this route's OpenAI-format backend (Chat "
            "Completions has no equivalent); the request was refused rather than sent "
            "without it"
        )
        self.feature = feature


class Malformed(RequestRefused):
    """A request that is not a valid Messages request in the first place."""
