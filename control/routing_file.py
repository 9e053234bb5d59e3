"""The routing YAML: read, validated, turned into a `RoutingConfig`.

The file (`CONFIG_FILE`, default `config.yaml`; syntax in config.example.yaml)
lists providers and rules. It is validated on the YAML node tree (`yaml.compose`),
not on the loaded data, so each error names the file, the line and the reason: a
broken file stops start-up, it never silently routes everything to the default
upstream.

Scalars are read as the text written (YAML 1.1 typing would turn `on` into a
boolean and `2024` into an int behind the operator's back). API keys never live in
the file: a provider names the environment variable that holds its key.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from control.header_rules import REFUSED_HEADERS
from control.routing import (
    MAX_TOKENS_FIELDS,
    THINKING_MODES,
    BreakerSettings,
    ConfigError,
    Fallback,
    OpenAISettings,
    Pattern,
    Provider,
    ProviderFormat,
    RoutingConfig,
    Rule,
)

DEFAULT_CONFIG_FILE = "config.yaml"
# Credentials come from api_key_env only; a header must not smuggle one into the file.
_CREDENTIAL_HEADERS = frozenset({"x-api-key", "authorization", "proxy-authorization"})
_SECRET_KEYS = frozenset({"api_key", "apikey", "api-key", "token", "secret"})

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_FINGERPRINT = re.compile(r"sha256:[0-9a-f]{16}")
_PROVIDER_KEYS = {
    "name",
    "format",
    "base_url",
    "api_key_env",
    "headers",
    "openai",
    "fallback_provider",
    "fallback_models",
    "breaker",
}
# A cool-down above a day is a typo, not a policy; a probe must come back one day.
_MAX_COOLDOWN = 86400.0


def config_from_environ(environ: Mapping[str, str]) -> RoutingConfig:
    """Load per CONFIG_FILE: set → that file must exist; unset → `config.yaml` if any."""
    path = environ.get("CONFIG_FILE", "").strip()
    return load_config(path or None, explicit=bool(path), environ=environ)


def load_config(path: str | None, *, explicit: bool, environ: Mapping[str, str]) -> RoutingConfig:
    path = path or DEFAULT_CONFIG_FILE
    file = Path(path)
    if not file.exists():
        if explicit:
            raise ConfigError(path, None, "config file not found (CONFIG_FILE is set)")
        return RoutingConfig()
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(path, None, f"cannot read the config file: {exc}") from None
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        reason = f"invalid YAML: {exc.problem or exc.context}"
        raise ConfigError(path, mark.line + 1 if mark else None, reason) from None
    except yaml.YAMLError as exc:
        raise ConfigError(path, None, f"invalid YAML: {exc}") from None
    return _Loader(path, environ).config(root)


class _Loader:
    def __init__(self, path: str, environ: Mapping[str, str]) -> None:
        self.path, self.environ = path, environ

    def error(self, node: Node, reason: str) -> ConfigError:
        mark = node.start_mark
        return ConfigError(self.path, mark.line + 1, reason, mark.column + 1)

    def config(self, root: Node | None) -> RoutingConfig:
        if root is None or _is_null(root):
            return RoutingConfig(path=self.path)
        top = self.mapping(root, "the config", {"providers", "rules"})
        providers: dict[str, Provider] = {}
        lines: dict[str, int] = {}
        for item in self.sequence(top.get("providers"), "providers"):
            provider, name_node = self.provider(item)
            if provider.name in providers:
                raise self.error(
                    name_node,
                    f"duplicate provider name {provider.name!r} "
                    f"(first defined at line {lines[provider.name]})",
                )
            providers[provider.name] = provider
            lines[provider.name] = name_node.start_mark.line + 1
        self.check_fallbacks(providers)
        rules = tuple(
            self.rule(item, index, providers)
            for index, item in enumerate(self.sequence(top.get("rules"), "rules"))
        )
        return RoutingConfig(path=self.path, providers=tuple(providers.values()), rules=rules)

    def provider(self, node: Node) -> tuple[Provider, Node]:
        fields = self.mapping(node, "a provider", _PROVIDER_KEYS)
        name_node = self.required(fields, node, "name", "a provider")
        name = self.text(name_node, "name")
        fmt_text = self.text(fields["format"], "format") if "format" in fields else "anthropic"
        try:
            fmt = ProviderFormat(fmt_text)
        except ValueError:
            supported = ", ".join(f.value for f in ProviderFormat)
            raise self.error(
                fields["format"], f"unknown format {fmt_text!r} (supported: {supported})"
            ) from None
        url_node = self.required(fields, node, "base_url", f"provider {name!r}")
        base_url = self.text(url_node, "base_url")
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise self.error(url_node, f"base_url must be an http(s) URL, got {base_url!r}")
        if parts.query or parts.fragment or parts.username or parts.password:
            raise self.error(url_node, "base_url must not carry credentials, a query or fragment")
        api_key = env_name = None
        if "api_key_env" in fields:
            env_node = fields["api_key_env"]
            env_name = self.text(env_node, "api_key_env")
            if not _ENV_NAME.fullmatch(env_name):
                raise self.error(env_node, f"api_key_env {env_name!r} is not a variable name")
            api_key = self.environ.get(env_name, "").strip()
            if not api_key:
                raise self.error(
                    env_node,
                    f"environment variable {env_name} (api key of {name!r}) is not set or empty",
                )
            if _CONTROL.search(api_key):
                raise self.error(env_node, f"environment variable {env_name} has control chars")
        headers: list[tuple[str, str]] = []
        if "headers" in fields:
            for key_node, value_node in self.pairs(fields["headers"], "headers"):
                header = self.text(key_node, "a header name")
                lower = header.lower()
                if not _TOKEN.fullmatch(header):
                    raise self.error(key_node, f"{header!r} is not a valid header name")
                if lower in REFUSED_HEADERS:
                    raise self.error(key_node, f"{header!r} is a hop-by-hop or framing header")
                if lower in _CREDENTIAL_HEADERS:
                    raise self.error(key_node, f"{header!r} carries a credential: use api_key_env")
                if any(lower == known.lower() for known, _ in headers):
                    raise self.error(key_node, f"header {header!r} is given twice")
                value = self.text(value_node, f"header {header!r}", allow_empty=True)
                if _CONTROL.search(value):
                    raise self.error(value_node, "a header value must not hold control characters")
                headers.append((header, value))
        provider = Provider(
            name,
            fmt,
            base_url.rstrip("/"),
            api_key,
            env_name,
            tuple(headers),
            openai=self.openai_settings(fields.get("openai"), fmt),
            fallback=self.fallback(fields),
            breaker=self.breaker(fields.get("breaker")),
        )
        return provider, name_node

    def openai_settings(self, node: Node | None, fmt: ProviderFormat) -> OpenAISettings:
        if node is None:
            return OpenAISettings()
        if fmt is not ProviderFormat.OPENAI:
            raise self.error(node, "`openai` options apply to providers of format openai only")
        fields = self.mapping(node, "openai", {"max_tokens_field", "thinking"})
        field = self.choice(fields.get("max_tokens_field"), "max_tokens_field", MAX_TOKENS_FIELDS)
        thinking = self.choice(fields.get("thinking"), "thinking", THINKING_MODES)
        return OpenAISettings(
            max_tokens_field=field or "max_tokens",  # type: ignore[arg-type]
            thinking=thinking or "refuse",  # type: ignore[arg-type]
        )

    def fallback(self, fields: Mapping[str, Node]) -> Fallback | None:
        if "fallback_provider" not in fields:
            if "fallback_models" in fields:
                raise self.error(
                    fields["fallback_models"], "fallback_models needs fallback_provider"
                )
            return None
        target_node = fields["fallback_provider"]
        target = self.text(target_node, "fallback_provider")
        models: list[tuple[Pattern, str]] = []
        if "fallback_models" in fields:
            for key_node, value_node in self.pairs(fields["fallback_models"], "fallback_models"):
                try:
                    pattern = Pattern.parse(self.text(key_node, "a fallback_models key"))
                except ValueError as exc:
                    raise self.error(key_node, f"fallback_models: {exc}") from None
                models.append(
                    (pattern, self.text(value_node, f"fallback model of {pattern.text!r}"))
                )
        return Fallback(target, tuple(models), target_node.start_mark.line + 1)

    def breaker(self, node: Node | None) -> BreakerSettings | None:
        if node is None:
            return BreakerSettings()
        if isinstance(node, ScalarNode) and node.value == "off":
            return None
        fields = self.mapping(node, "breaker (or `off`)", {"failures", "cooldown"})
        default = BreakerSettings()
        failures, cooldown = default.failures, default.cooldown
        if "failures" in fields:
            text = self.text(fields["failures"], "failures")
            if not text.isdigit() or not 1 <= int(text) <= 1000:
                raise self.error(
                    fields["failures"], "failures must be a whole number from 1 to 1000"
                )
            failures = int(text)
        if "cooldown" in fields:
            text = self.text(fields["cooldown"], "cooldown")
            try:
                cooldown = float(text)
            except ValueError:
                cooldown = -1.0
            if not 0 < cooldown <= _MAX_COOLDOWN:  # NaN fails too
                raise self.error(
                    fields["cooldown"],
                    f"cooldown must be seconds above 0, at most {_MAX_COOLDOWN:g}",
                )
        return BreakerSettings(failures, cooldown)

    def check_fallbacks(self, providers: Mapping[str, Provider]) -> None:
        """Every fallback names a provider, and no chain comes back to where it began
        (a request would bounce between failing providers)."""
        for provider in providers.values():
            fallback = provider.fallback
            if fallback is None:
                continue
            if fallback.provider not in providers:
                known = ", ".join(sorted(providers))
                reason = f"unknown fallback_provider {fallback.provider!r} ({known})"
                raise ConfigError(self.path, fallback.line, reason)
        for start in providers.values():
            chain = [start.name]
            current = start
            while current.fallback is not None:
                current = providers[current.fallback.provider]
                if current.name in chain:
                    cycle = " → ".join([*chain[chain.index(current.name) :], current.name])
                    line = providers[chain[-1]].fallback.line  # type: ignore[union-attr]
                    raise ConfigError(self.path, line, f"fallback cycle: {cycle}")
                chain.append(current.name)

    def rule(self, node: Node, index: int, providers: Mapping[str, Provider]) -> Rule:
        fields = self.mapping(node, "a rule", {"name", "match", "action"})
        name = self.text(fields["name"], "name") if "name" in fields else f"rules[{index}]"
        models = agents = client_keys = None
        if "match" in fields and not _is_null(fields["match"]):
            match = self.mapping(fields["match"], "match", {"model", "agent", "client_key"})
            if "model" in match:
                models = self.patterns(match["model"], "model")
            if "agent" in match:
                agents = self.patterns(match["agent"], "agent")
            if "client_key" in match:
                keys = set()
                for key_node in self.one_or_many(match["client_key"], "client_key"):
                    key = self.text(key_node, "client_key").lower()
                    if not _FINGERPRINT.fullmatch(key):
                        raise self.error(key_node, "client_key must be sha256:<16 hex digits>")
                    keys.add(key)
                client_keys = frozenset(keys)
        action_node = self.required(fields, node, "action", "a rule")
        action = self.mapping(action_node, "action", {"provider", "model"})
        provider_node = self.required(action, action_node, "provider", "action")
        provider_name = self.text(provider_node, "provider")
        if provider_name not in providers:
            known = ", ".join(sorted(providers)) or "none defined"
            raise self.error(provider_node, f"unknown provider {provider_name!r} ({known})")
        model = self.text(action["model"], "model") if "model" in action else None
        line = node.start_mark.line + 1
        return Rule(name, line, providers[provider_name], model, models, agents, client_keys)

    def patterns(self, node: Node, what: str) -> tuple[Pattern, ...]:
        out = []
        for item in self.one_or_many(node, what):
            try:
                out.append(Pattern.parse(self.text(item, what)))
            except ValueError as exc:
                raise self.error(item, f"{what}: {exc}") from None
        return tuple(out)

    # Node helpers -----------------------------------------------------------------

    def mapping(self, node: Node, what: str, allowed: set[str]) -> dict[str, Node]:
        out: dict[str, Node] = {}
        for key_node, value_node in self.pairs(node, what):
            key = self.text(key_node, "a key")
            if key.lower() in _SECRET_KEYS:
                raise self.error(
                    key_node,
                    f"{key!r}: keys are never read from the file; put the key in an "
                    "environment variable and name it in api_key_env",
                )
            if key not in allowed:
                raise self.error(
                    key_node,
                    f"unknown key {key!r} in {what} (allowed: {', '.join(sorted(allowed))})",
                )
            out[key] = value_node
        return out

    def pairs(self, node: Node, what: str) -> list[tuple[Node, Node]]:
        if not isinstance(node, MappingNode):
            raise self.error(node, f"{what} must be a mapping")
        seen: dict[str, int] = {}
        for key_node, _ in node.value:
            key = key_node.value if isinstance(key_node, ScalarNode) else None
            if key in seen:
                raise self.error(key_node, f"duplicate key {key!r} (first at line {seen[key]})")
            if key is not None:
                seen[key] = key_node.start_mark.line + 1
        return list(node.value)

    def sequence(self, node: Node | None, what: str) -> list[Node]:
        if node is None or _is_null(node):
            return []
        if not isinstance(node, SequenceNode):
            raise self.error(node, f"{what} must be a list")
        return list(node.value)

    def one_or_many(self, node: Node, what: str) -> list[Node]:
        items = node.value if isinstance(node, SequenceNode) else [node]
        if not items:
            raise self.error(node, f"{what} must not be an empty list")
        return items

    def required(self, fields: Mapping[str, Node], node: Node, key: str, what: str) -> Node:
        if key not in fields:
            raise self.error(node, f"{what} needs {key!r}")
        return fields[key]

    def choice(self, node: Node | None, what: str, allowed: tuple[str, ...]) -> str | None:
        if node is None:
            return None
        value = self.text(node, what)
        if value not in allowed:
            raise self.error(node, f"{what} must be one of {', '.join(allowed)}, got {value!r}")
        return value

    def text(self, node: Node, what: str, *, allow_empty: bool = False) -> str:
        if not isinstance(node, ScalarNode) or _is_null(node):
            raise self.error(node, f"{what} must be a text value")
        if not node.value and not allow_empty:
            raise self.error(node, f"{what} must not be empty")
        return str(node.value)


def _is_null(node: Node) -> bool:
    return isinstance(node, ScalarNode) and node.tag == "tag:yaml.org,2002:null"
