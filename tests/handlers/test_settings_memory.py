"""`/api/settings` without a request log (REQUEST_LOG=false): the header rules live in
the process and still apply. Both routes answered 500 before."""

from __future__ import annotations

import json

from app import create_app
from runtime.settings import Settings


async def test_settings_without_a_log_are_kept_in_memory() -> None:
    app = create_app(
        Settings.from_env({"ANTHROPIC_FORWARD_URL": "http://127.0.0.1:9", "REQUEST_LOG": "false"})
    )
    _, resp = await app.asgi_client.get("/api/settings")
    assert resp.status == 200
    assert resp.json == {"requestHeaderRules": [], "responseHeaderRules": []}
    rules = {
        "requestHeaderRules": [{"header": "x-team", "action": "set", "value": "ml"}],
        "responseHeaderRules": [{"header": "x-internal", "action": "block"}],
    }
    _, resp = await app.asgi_client.put("/api/settings", content=json.dumps(rules))
    assert resp.status == 200
    assert resp.json["requestHeaderRules"][0] == {**rules["requestHeaderRules"][0], "enabled": True}
    current = app.ctx.rulebook.current
    assert [r.header for r in current.request] == ["x-team"]
    assert [r.action for r in current.response] == ["block"]
    _, resp = await app.asgi_client.get("/api/settings")
    assert resp.json["responseHeaderRules"] == [
        {"header": "x-internal", "action": "block", "enabled": True}
    ]
