"""Pick where a request goes and what exactly is sent: the handler's "route" step.

Pure: given what the client sent, the routing config, the header rules and the
demotion switch, decide the upstream URL, headers and body. Every change to the
client's body is a byte-level edit of one member (`model`, `stream`), so all
other bytes reach the upstream exactly as sent.
"""

from __future__ import annotations

from dataclasses import dataclass

from control.demotion import promote_body_at, wants_non_streaming
from control.header_rules import HeaderRule, apply_rules
from control.routing import (
    ProviderFormat,
    RoutingConfig,
    agent_of,
    client_key_fingerprint,
    rewrite_model_at,
)
from streaming.exchange import Exchange
from streaming.headers import request_headers_for_upstream

DEFAULT_PROVIDER = "anthropic"


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
    body: bytes
    provider: str
    routed_model: str | None = None
    rule: str | None = None
    demote: bool = False


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
    headers = request_headers_for_upstream(exchange.request_headers)
    body = exchange.request_body
    # The body's scan from the inspection: a 30 MB body is not scanned again here.
    layout = exchange.request_layout
    route = None
    if exchange.request_json is not None:
        route = routing.route(
            exchange.model,
            agent_of(exchange.request_headers),
            client_key_fingerprint(exchange.request_headers),
        )
    if route is None:
        plan = UpstreamPlan(default_base + target, headers, body, DEFAULT_PROVIDER)
        anthropic_format = True
    else:
        provider = route.provider
        if route.routed_model is not None:
            body, layout = rewrite_model_at(body, route.routed_model, layout)
        plan = UpstreamPlan(
            provider.url_for(target),
            provider.upstream_headers(headers),
            body,
            provider.name,
            route.routed_model,
            route.rule,
        )
        anthropic_format = provider.format is ProviderFormat.ANTHROPIC
    plan.headers = apply_rules(plan.headers, rules.request)
    if (
        demote_enabled
        and anthropic_format
        and exchange.method == "POST"
        and exchange.path.rstrip("/") == "/v1/messages"
        and exchange.request_json is not None
        and wants_non_streaming(plan.body, layout)
    ):
        plan.body, layout = promote_body_at(plan.body, layout)
        plan.demote = True
        # The SSE is folded here, so ask for it uncompressed.
        plan.headers = [(k, v) for k, v in plan.headers if k.lower() != "accept-encoding"]
        plan.headers.append(("accept-encoding", "identity"))
    return plan
