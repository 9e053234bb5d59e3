"""Pick where a request goes and what exactly is sent: the handler's "route" step.

Pure: given what the client sent, the routing config, the header rules and the
demotion switch, decide the upstream URL, headers and body. Every change to the
client's body is a byte-level edit of one member (`model`, `stream`), so all
other bytes reach an Anthropic-format upstream exactly as sent. An OpenAI-format
provider's plan keeps the client's body: the forwarder translates it
(`providers/`, which control/ does not import).

`plan_upstream` plans the first provider; `plan_fallback` the provider a failing
one hands the request to (its `fallback_provider`), with the model its mapping
names.
"""

from __future__ import annotations

from dataclasses import dataclass

from control.demotion import promote_body_at, wants_non_streaming
from control.header_rules import HeaderRule, apply_rules
from control.jsonbytes import ObjectLayout
from control.routing import (
    Provider,
    ProviderFormat,
    RoutingConfig,
    agent_of,
    client_key_fingerprint,
    rewrite_model_at,
)
from streaming.exchange import Exchange
from streaming.headers import request_headers_for_upstream

DEFAULT_PROVIDER = "anthropic"
MESSAGES_PATH = "/v1/messages"
COUNT_TOKENS_PATH = "/v1/messages/count_tokens"


@dataclass(frozen=True, slots=True)
class HeaderRuleSet:
    request: tuple[HeaderRule, ...] = ()
    response: tuple[HeaderRule, ...] = ()


@dataclass(slots=True)
class RuleBook:
    """The header rules in force in this worker. `current` is replaced whole, never
    mutated, when the settings change, so a request always reads one consistent set."""

    current: HeaderRuleSet = HeaderRuleSet()


@dataclass(slots=True)
class UpstreamPlan:
    url: str
    headers: list[tuple[str, str]]
    body: bytes  # an OpenAI-format plan: the client's body, translated by the forwarder
    provider: str
    routed_model: str | None = None  # the model a rule or fallback mapping rewrote to
    rule: str | None = None
    demote: bool = False
    format: ProviderFormat = ProviderFormat.ANTHROPIC
    target: Provider | None = None  # None: the default upstream (ANTHROPIC_FORWARD_URL)
    # OpenAI format: ask the backend for a stream (the client's `stream: true`, or
    # demotion); the body's own `stream` says what the client gets.
    stream: bool = False
    # The model this provider is asked for: `routed_model`, else the client's.
    model: str | None = None


def plan_upstream(
    exchange: Exchange,
    target: str,
    *,
    default_base: str,
    routing: RoutingConfig,
    rules: HeaderRuleSet,
    demote_enabled: bool,
) -> UpstreamPlan:
    """`target` is the client's raw path and query, e.g. `/v1/messages?beta=true`."""
    route = None
    if exchange.request_json is not None:
        route = routing.route(
            exchange.model,
            agent_of(exchange.request_headers),
            client_key_fingerprint(exchange.request_headers),
        )
    if route is None:
        headers = request_headers_for_upstream(exchange.request_headers)
        plan = UpstreamPlan(
            default_base + target,
            headers,
            exchange.request_body,
            DEFAULT_PROVIDER,
            model=exchange.model,
        )
        return _anthropic_finish(plan, exchange, rules, demote_enabled, exchange.request_layout)
    return plan_provider(
        exchange,
        target,
        route.provider,
        route.routed_model,
        rule=route.rule,
        rules=rules,
        demote_enabled=demote_enabled,
    )


def plan_fallback(
    exchange: Exchange,
    target: str,
    failed: UpstreamPlan,
    *,
    routing: RoutingConfig,
    rules: HeaderRuleSet,
    demote_enabled: bool,
) -> UpstreamPlan | None:
    """The plan for the provider `failed`'s provider falls back to; None without one."""
    if failed.target is None:
        return None
    found = routing.fallback_for(failed.target, failed.model, exchange.model)
    if found is None:
        return None
    provider, model = found
    rewrite = model if model != exchange.model else None
    return plan_provider(
        exchange,
        target,
        provider,
        rewrite,
        rule=failed.rule,
        rules=rules,
        demote_enabled=demote_enabled,
    )


def plan_provider(
    exchange: Exchange,
    target: str,
    provider: Provider,
    rewrite: str | None,
    *,
    rule: str | None,
    rules: HeaderRuleSet,
    demote_enabled: bool,
) -> UpstreamPlan:
    """The plan for `provider`, asked for `rewrite` (None: the client's model)."""
    model = rewrite if rewrite is not None else exchange.model
    if provider.format is ProviderFormat.OPENAI:
        demote = demote_enabled and _is_messages(exchange) and _non_streaming(exchange)
        stream = exchange.stream_requested or demote
        return UpstreamPlan(
            provider.chat_completions_url,
            apply_rules(provider.openai_headers(stream=stream), rules.request),
            exchange.request_body,
            provider.name,
            rewrite,
            rule,
            demote,
            ProviderFormat.OPENAI,
            provider,
            stream,
            model,
        )
    body = exchange.request_body
    # The body's scan from the inspection: a 30 MB body is not scanned again here.
    layout = exchange.request_layout
    if rewrite is not None:
        body, layout = rewrite_model_at(body, rewrite, layout)
    plan = UpstreamPlan(
        provider.url_for(target),
        provider.upstream_headers(request_headers_for_upstream(exchange.request_headers)),
        body,
        provider.name,
        rewrite,
        rule,
        target=provider,
        model=model,
    )
    return _anthropic_finish(plan, exchange, rules, demote_enabled, layout)


def _anthropic_finish(
    plan: UpstreamPlan,
    exchange: Exchange,
    rules: HeaderRuleSet,
    demote_enabled: bool,
    layout: ObjectLayout | None,
) -> UpstreamPlan:
    plan.headers = apply_rules(plan.headers, rules.request)
    if demote_enabled and _is_messages(exchange) and wants_non_streaming(plan.body, layout):
        plan.body, _ = promote_body_at(plan.body, layout)
        plan.demote = True
        # The SSE is folded here, so ask for it uncompressed.
        plan.headers = [(k, v) for k, v in plan.headers if k.lower() != "accept-encoding"]
        plan.headers.append(("accept-encoding", "identity"))
    return plan


def _is_messages(exchange: Exchange) -> bool:
    return (
        exchange.method == "POST"
        and exchange.path.rstrip("/") == MESSAGES_PATH
        and exchange.request_json is not None
    )


def _non_streaming(exchange: Exchange) -> bool:
    return wants_non_streaming(exchange.request_body, exchange.request_layout)
