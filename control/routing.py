"""Model routing: which provider serves a request, and under which model name.

The routing model (providers, patterns, rules) and the request-side helpers the
plan uses. The YAML file that defines it is read and validated in
`control.routing_file`; the first rule whose every condition holds wins.

The provider seam: `ProviderFormat` lists the wire formats. An `anthropic`
provider gets the client's request as sent (only `model` may be rewritten); an
`openai` provider gets it translated into a Chat Completions request by the
forwarder (`providers/`), with `OpenAISettings` saying what its backend accepts.
A provider may name a `Fallback` (another provider, any format, and the model to
ask it for) and carries its circuit breaker's `BreakerSettings`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal

from control.jsonbytes import ObjectLayout
from control.jsonedit import set_member, splice_member
from streaming.credentials import fingerprint

AGENT_HEADER = "x-claude-code-agent-id"


class ProviderFormat(StrEnum):
    ANTHROPIC = "anthropic"
    OPENAI = "openai"  # OpenAI Chat Completions, which the compatible servers share


SUPPORTED_FORMATS = frozenset(ProviderFormat)

MAX_TOKENS_FIELDS = ("max_tokens", "max_completion_tokens")
THINKING_MODES = ("refuse", "reasoning_effort", "ignore")
# An OpenAI-format backend gets no credential of the client's (they are Anthropic
# keys): its own key, if any, and these.
OPENAI_USER_AGENT = "claude-proxy"


class ConfigError(Exception):
    """The routing config cannot be used; `str()` is `path:line: reason`."""

    def __init__(self, path: str, line: int | None, reason: str, column: int | None = None):
        self.path, self.line, self.column, self.reason = path, line, column, reason
        super().__init__(f"{path}:{line}: {reason}" if line is not None else f"{path}: {reason}")


@dataclass(frozen=True, slots=True)
class OpenAISettings:
    """What the backend of an `openai` provider accepts; the forwarder turns it into
    `providers.OpenAIOptions` (control/ does not import the translation)."""

    max_tokens_field: Literal["max_tokens", "max_completion_tokens"] = "max_tokens"
    thinking: Literal["refuse", "reasoning_effort", "ignore"] = "refuse"


@dataclass(frozen=True, slots=True)
class BreakerSettings:
    """`failures` consecutive failures open the provider's breaker for `cooldown`
    seconds; then one probe request decides whether it closes again."""

    failures: int = 5
    cooldown: float = 30.0


@dataclass(frozen=True, slots=True)
class Fallback:
    """Where a failing provider's request goes next. `models` maps the model the
    failing provider was asked for (a pattern, first match wins) to the model the
    fallback is asked for; without a match the fallback gets the model the client
    asked for, which is what a client sends to its usual provider."""

    provider: str
    models: tuple[tuple[Pattern, str], ...] = ()
    line: int | None = None

    def model_for(self, sent: str | None, requested: str | None) -> str | None:
        if sent is not None:
            for pattern, target in self.models:
                if pattern.matches(sent):
                    return target
        return requested


@dataclass(frozen=True, slots=True)
class Provider:
    name: str
    format: ProviderFormat
    base_url: str  # no trailing slash
    api_key: str | None = field(default=None, repr=False)  # keep keys out of logs
    api_key_env: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    openai: OpenAISettings = OpenAISettings()
    fallback: Fallback | None = None
    breaker: BreakerSettings | None = BreakerSettings()  # None: no breaker

    def url_for(self, path_and_query: str) -> str:
        """Upstream URL for a client path such as `/v1/messages?beta=true`."""
        return self.base_url + path_and_query

    @property
    def chat_completions_url(self) -> str:
        return self.base_url + "/chat/completions"

    def openai_headers(self, *, stream: bool) -> list[tuple[str, str]]:
        """Request headers for an OpenAI-format backend. None of the client's: its
        credentials are Anthropic keys and its `anthropic-*` headers mean nothing
        there. Uncompressed, so each chunk can be translated as it arrives."""
        accept = "text/event-stream" if stream else "application/json"
        base = [
            ("content-type", "application/json"),
            ("accept", accept),
            ("accept-encoding", "identity"),
            ("user-agent", OPENAI_USER_AGENT),
        ]
        drop = {name.lower() for name, _ in self.headers}
        kept = [(k, v) for k, v in base if k not in drop]
        return kept + self.credential_headers() + list(self.headers)

    def credential_headers(self) -> list[tuple[str, str]]:
        if self.api_key is None:
            return []
        if self.format is ProviderFormat.ANTHROPIC:
            return [("x-api-key", self.api_key)]
        return [("authorization", f"Bearer {self.api_key}")]

    def upstream_headers(self, headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
        """Request headers for this provider: with its own key, the client's
        credentials are replaced by it; extra headers replace same-named ones."""
        own = self.credential_headers()
        drop = {name.lower() for name, _ in self.headers}
        if own:
            drop |= {"x-api-key", "authorization"}
        kept = [(k, v) for k, v in headers if k.lower() not in drop]
        return kept + own + list(self.headers)


@dataclass(frozen=True, slots=True)
class Pattern:
    """`prefix:TEXT` (starts with TEXT), `exact:TEXT` (TEXT literally), a glob when it
    holds `*` (any run, empty included) or `?` (one character), else exact. Matching
    is case-sensitive, as model ids are.

    A glob is matched piece by piece, not as one `.*` regex: with several stars that
    regex backtracks polynomially in the model id, which the client chooses. Each
    piece between stars has a fixed length, so placing every middle piece at its
    leftmost fit is exact and the match is linear in the id for a given pattern."""

    text: str
    kind: Literal["exact", "prefix", "glob"]
    value: str
    # Glob pieces between the stars: a fixed-length regex (`?` is `.`) and its length.
    pieces: tuple[tuple[re.Pattern[str], int], ...] = ()

    @classmethod
    def parse(cls, text: str) -> Pattern:
        if text.startswith("prefix:") and text != "prefix:":
            return cls(text, "prefix", text[len("prefix:") :])
        if text.startswith("exact:") and text != "exact:":
            return cls(text, "exact", text[len("exact:") :])
        if "*" in text or "?" in text:
            # Own translation, not fnmatch: `[` stays literal.
            pieces = tuple(
                (
                    re.compile("".join("." if c == "?" else re.escape(c) for c in part), re.DOTALL),
                    len(part),
                )
                for part in text.split("*")
            )
            return cls(text, "glob", text, pieces)
        if not text:
            raise ValueError("a pattern must not be empty")
        return cls(text, "exact", text)

    def matches(self, value: str) -> bool:
        if self.kind == "prefix":
            return value.startswith(self.value)
        if self.kind == "glob":
            return _glob_matches(self.pieces, value)
        return value == self.value


@dataclass(frozen=True, slots=True)
class Rule:
    name: str  # `name:` from the file, else `rules[i]`
    line: int
    provider: Provider
    model: str | None = None  # rewrite target
    models: tuple[Pattern, ...] | None = None  # None: any model (even none)
    agents: tuple[Pattern, ...] | None = None
    client_keys: frozenset[str] | None = None

    def matches(self, model: str | None, agent: str | None, client_key: str | None) -> bool:
        if self.models is not None and (
            model is None or not any(p.matches(model) for p in self.models)
        ):
            return False
        if self.agents is not None and (
            agent is None or not any(p.matches(agent) for p in self.agents)
        ):
            return False
        return self.client_keys is None or client_key in self.client_keys


@dataclass(frozen=True, slots=True)
class Route:
    provider: Provider
    routed_model: str | None  # None: the model is not rewritten
    rule: str
    rule_line: int


@dataclass(frozen=True, slots=True)
class RoutingConfig:
    path: str | None = None  # None: no file, no routing
    providers: tuple[Provider, ...] = ()
    rules: tuple[Rule, ...] = ()

    def route(
        self, model: str | None, agent: str | None, client_key_fingerprint: str | None
    ) -> Route | None:
        """The first matching rule's route, or None for the default upstream."""
        for rule in self.rules:
            if rule.matches(model, agent, client_key_fingerprint):
                return Route(rule.provider, rule.model, rule.name, rule.line)
        return None

    def provider_named(self, name: str) -> Provider | None:
        for provider in self.providers:
            if provider.name == name:
                return provider
        return None

    def fallback_for(
        self, provider: Provider, sent: str | None, requested: str | None
    ) -> tuple[Provider, str | None] | None:
        """The provider `provider`'s failures go to and the model it is asked for;
        None without a fallback. The loader refused unknown names and cycles, so
        following fallbacks always ends."""
        if provider.fallback is None:
            return None
        target = self.provider_named(provider.fallback.provider)
        if target is None:
            return None
        return target, provider.fallback.model_for(sent, requested)


def _glob_matches(pieces: tuple[tuple[re.Pattern[str], int], ...], value: str) -> bool:
    if len(pieces) == 1:  # no star: `?`s only
        return pieces[0][0].fullmatch(value) is not None
    (first, first_len), *middle, (last, last_len) = pieces
    tail = len(value) - last_len
    if tail < first_len or not first.match(value) or not last.fullmatch(value, tail):
        return False
    pos = first_len
    for piece, _ in middle:
        found = piece.search(value, pos, tail)
        if found is None:
            return False
        pos = found.end()
    return True


def rewrite_model(body: bytes, model: str) -> bytes:
    """`body` with only its top-level `model` set to `model` (added when absent);
    every other byte unchanged. ValueError if `body` is not a JSON object."""
    return set_member(body, "model", _json_string(model))


def rewrite_model_at(
    body: bytes, model: str, layout: ObjectLayout | None
) -> tuple[bytes, ObjectLayout]:
    """`rewrite_model` using the body's scan when there is one; also returns the
    result's layout."""
    return splice_member(body, "model", _json_string(model), layout)


def client_key_fingerprint(
    headers: Mapping[str, str] | Iterable[tuple[str, str]],
) -> str | None:
    """Fingerprint of the client's `x-api-key`, else of its `Authorization: Bearer`
    token; None without either."""
    pairs = _pairs(headers)
    for name, value in pairs:
        if name.lower() == "x-api-key" and value.strip():
            return fingerprint(value.strip())
    for name, value in pairs:
        if name.lower() == "authorization":
            scheme, _, token = value.strip().partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return fingerprint(token.strip())
    return None


def agent_of(headers: Mapping[str, str] | Iterable[tuple[str, str]]) -> str | None:
    """The `X-Claude-Code-Agent-Id` header, when present and non-empty."""
    for name, value in _pairs(headers):
        if name.lower() == AGENT_HEADER and value.strip():
            return value.strip()
    return None


def _json_string(value: str) -> bytes:
    return json.dumps(value).encode()


def _pairs(headers: Mapping[str, str] | Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    return list(headers.items()) if isinstance(headers, Mapping) else list(headers)
