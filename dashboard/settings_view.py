"""What the Settings page shows read-only: the routing config in force and the
effective settings, with every secret reduced to whether it is set.

Pure functions over `RoutingConfig` and `Settings` (no request, no I/O), so the
redaction is tested on its own. What never leaves this module:

- DASHBOARD_PASSWORD, and any future field whose name says it is a secret:
  only "set" / "not set";
- a password inside a URL (MONGODB_URI, ANTHROPIC_FORWARD_URL, a provider's
  base_url) and MongoDB URI options that carry credentials;
- a provider's key (only the name of the variable holding it) and the values
  of its extra headers (a custom credential header such as Azure's `api-key`
  is not one the config loader can recognise and refuse).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from typing import Any
from urllib.parse import parse_qsl

from control.routing import Pattern, Provider, RoutingConfig, Rule
from runtime.settings import Settings, env_var_names

SET = "set"
NOT_SET = "not set"
# Shown instead of a URL whose credentials could not be located with certainty.
UNPARSED_URL = "set (not shown: its credentials could not be separated)"
REDACTED = "…"

# Settings fields that are secrets by name; the pattern also catches ones added later.
SECRET_FIELDS = frozenset({"dashboard_password"})
_SECRET_NAME = re.compile(r"password|secret|token|api_?key|credential", re.IGNORECASE)
# MongoDB URI options whose values are (or may carry) credentials.
_SECRET_OPTION = re.compile(r"password|secret|token|authmechanismproperties", re.IGNORECASE)
_MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class SettingRow:
    name: str  # the Settings field
    env: str  # the environment variable that sets it
    value: str  # as shown: secrets as "set"/"not set", URLs without passwords
    is_set: bool  # False: None (shown as "not set")
    is_default: bool
    secret: bool


@dataclass(frozen=True, slots=True)
class ProviderView:
    name: str
    format: str
    base_url: str
    key_env: str | None  # the variable's NAME; its value is never shown
    key_set: bool
    header_names: tuple[str, ...]
    fallback: str | None
    fallback_models: tuple[tuple[str, str], ...]  # (pattern, model asked of the fallback)
    breaker: str
    options: str | None  # the openai format's backend options


@dataclass(frozen=True, slots=True)
class RuleView:
    position: int  # 1-based: rules are tried in this order
    name: str
    line: int
    models: tuple[str, ...] | None  # None: any model
    agents: tuple[str, ...] | None
    client_keys: tuple[str, ...] | None  # fingerprints, never keys
    provider: str
    rewrite: str | None  # the model the provider is asked for; None: unchanged


@dataclass(frozen=True, slots=True)
class RoutingView:
    path: str | None  # None: no routing file
    providers: tuple[ProviderView, ...]
    rules: tuple[RuleView, ...]
    default_upstream: str  # where unmatched requests go


# ---- URLs ---------------------------------------------------------------------------
def redact_url(url: str) -> str:
    """`url` without the password of its userinfo (`scheme://user:pw@host` →
    `scheme://user@host`) and with credential-bearing query options replaced by
    `…`. The authority ends at the first `/` after the scheme, as PyMongo reads a
    MongoDB URI (its user and password must be percent-encoded). When an `@`
    remains after that authority, a password may have held an unencoded `/` or
    `?`: the URL is then not shown at all."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return UNPARSED_URL if "@" in url else url
    authority, slash, tail = rest.partition("/")
    if not slash and "?" in authority:  # `mongodb://host?opts`: no path, options follow
        authority, _, options = authority.partition("?")
        tail, slash = "?" + options, ""
    if "@" in authority:
        userinfo, _, hosts = authority.rpartition("@")
        user = userinfo.partition(":")[0]
        authority = f"{user}@{hosts}" if user else hosts
    path, question, query = tail.partition("?")
    if "@" in tail:  # after the authority: a password with an unencoded `/` or `?`
        return UNPARSED_URL
    if question:
        query = _redact_query(query)
    return f"{scheme}://{authority}{slash}{path}{question}{query}"


def _redact_query(query: str) -> str:
    parts = []
    for name, value in parse_qsl(query, keep_blank_values=True):
        shown = REDACTED if _SECRET_OPTION.search(name) else value
        parts.append(f"{name}={shown}")  # shown, never requested: no re-encoding
    return "&".join(parts)


# ---- effective settings ---------------------------------------------------------------
def is_secret_field(name: str) -> bool:
    return name in SECRET_FIELDS or bool(_SECRET_NAME.search(name))


def _plain(name: str, value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):  # every float setting is a number of seconds
        return f"{value:g} s"
    if isinstance(value, int):
        if name.endswith("_bytes"):
            size = f" ({value / _MIB:g} MiB)" if value >= _MIB else ""
            return f"{value:,} bytes{size}"
        if name.endswith("_days"):
            return f"{value:,} days"
        return str(value)
    if isinstance(value, tuple):
        return ", ".join(str(item) for item in value) if value else "(none)"
    text = str(value)
    return redact_url(text) if "://" in text or "@" in text else text


def effective_settings(settings: Settings) -> list[SettingRow]:
    """One row per Settings field, in the order the class declares them."""
    env_names = env_var_names()
    rows = []
    for f in fields(Settings):
        value = getattr(settings, f.name)
        secret = is_secret_field(f.name)
        is_set = value is not None and value != ""
        if secret or not is_set:
            shown = SET if is_set else NOT_SET
        else:
            shown = _plain(f.name, value)
        rows.append(
            SettingRow(
                name=f.name,
                env=env_names[f.name],
                value=shown,
                is_set=is_set,
                is_default=value == f.default,
                secret=secret,
            )
        )
    return rows


# ---- routing --------------------------------------------------------------------------
def _patterns(patterns: tuple[Pattern, ...] | None) -> tuple[str, ...] | None:
    return None if patterns is None else tuple(p.text for p in patterns)


def _breaker(provider: Provider) -> str:
    if provider.breaker is None:
        return "off"
    b = provider.breaker
    return f"opens after {b.failures} failures, for {b.cooldown:g} s"


def provider_view(provider: Provider) -> ProviderView:
    options = None
    if provider.format.value == "openai":
        options = (
            f"max tokens as {provider.openai.max_tokens_field}, "
            f"thinking: {provider.openai.thinking}"
        )
    fallback = provider.fallback
    return ProviderView(
        name=provider.name,
        format=provider.format.value,
        base_url=redact_url(provider.base_url),
        key_env=provider.api_key_env,
        key_set=provider.api_key is not None,
        header_names=tuple(name for name, _ in provider.headers),
        fallback=fallback.provider if fallback else None,
        fallback_models=tuple((p.text, m) for p, m in fallback.models) if fallback else (),
        breaker=_breaker(provider),
        options=options,
    )


def rule_view(position: int, rule: Rule) -> RuleView:
    keys = None if rule.client_keys is None else tuple(sorted(rule.client_keys))
    return RuleView(
        position=position,
        name=rule.name,
        line=rule.line,
        models=_patterns(rule.models),
        agents=_patterns(rule.agents),
        client_keys=keys,
        provider=rule.provider.name,
        rewrite=rule.model,
    )


def routing_view(config: RoutingConfig, settings: Settings) -> RoutingView:
    return RoutingView(
        path=config.path,
        providers=tuple(provider_view(p) for p in config.providers),
        rules=tuple(rule_view(i, rule) for i, rule in enumerate(config.rules, start=1)),
        default_upstream=redact_url(settings.anthropic_forward_url),
    )
