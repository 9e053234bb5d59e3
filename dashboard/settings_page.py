"""The Settings page: the header rules editor, the routing config and the
effective settings.

The editor (dashboard/static/settings.js) reads and saves the rules through
`GET/PUT /api/settings`, the API every other client uses, so the page applies
exactly the API's validation and shows its messages; the server renders only
its frame and the vocabulary of the rules (actions and the fields each one
reads, from control/header_rules.py). The routing config and the settings are
rendered here, read-only, through dashboard/settings_view.py, which keeps every
secret out of the page.
"""

from __future__ import annotations

import json
from typing import Any

from sanic import Request
from sanic.response import HTTPResponse

from control.header_rules import ACTIONS, MAX_RULES, USES
from control.routing import RoutingConfig
from dashboard.render import render
from dashboard.settings_view import effective_settings, routing_view
from runtime.settings import Settings

# The two rule lists of the settings document: (key, id prefix, title, what they act on).
RULE_LISTS: tuple[tuple[str, str, str, str], ...] = (
    (
        "requestHeaderRules",
        "request",
        "Request rules",
        "Applied in order to the headers of every request forwarded upstream.",
    ),
    (
        "responseHeaderRules",
        "response",
        "Response rules",
        "Applied in order to the headers of every response returned to the client.",
    ),
)


def rule_vocabulary() -> str:
    """What the editor needs to know of the rules, as JSON for a data attribute:
    the actions and the text fields each reads (it sends only those)."""
    return json.dumps(
        {
            "actions": list(ACTIONS),
            "uses": {action: sorted(used) for action, used in USES.items()},
        },
        separators=(",", ":"),
    )


def routing_in_force(request: Request) -> RoutingConfig:
    """The routing the forwarder applies (built once at start-up); an empty
    config where none is loaded."""
    routing = getattr(request.app.ctx, "routing", None)
    if routing is None:
        forwarder = getattr(request.app.ctx, "forwarder", None)
        routing = getattr(forwarder, "routing", None)
    return routing if isinstance(routing, RoutingConfig) else RoutingConfig()


def settings_context(request: Request) -> dict[str, Any]:
    settings: Settings = request.app.ctx.settings
    return {
        "rule_lists": RULE_LISTS,
        "vocabulary": rule_vocabulary(),
        "actions": ACTIONS,
        "max_rules": MAX_RULES,
        # Without the request log there is no database: the rules live in this
        # process only, lost at restart and not shared with other workers.
        "rules_persist": getattr(request.app.ctx, "settings_store", None) is not None,
        "workers": settings.workers,
        "routing": routing_view(routing_in_force(request), settings),
        "settings_rows": effective_settings(settings),
    }


async def settings_page(request: Request) -> HTTPResponse:
    return render(request, "settings.html", **settings_context(request))
