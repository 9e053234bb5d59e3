"""Header rules in MongoDB: PUT through one app, in force on a second within 5 s."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase
from sanic import Sanic

from control.header_rules import HeaderRule
from control.plan import RuleBook
from control.settings_store import SETTINGS_ID, SettingsStore
from handlers import settings as settings_handlers
from openapi import components  # noqa: F401  (registers the schemas)


@pytest.fixture
async def db(mongo_uri: str, database_name: str) -> AsyncIterator[AsyncDatabase]:
    client: AsyncMongoClient = AsyncMongoClient(mongo_uri, tz_aware=True)
    yield client[database_name]
    await client.drop_database(database_name)
    await client.close()


def _replica(name: str, db: AsyncDatabase, poll: float) -> Sanic:
    """A minimal app with the settings routes, as one replica would serve them."""
    app = Sanic(name)
    app.ctx.rulebook = RuleBook()
    app.ctx.settings_store = SettingsStore(db["settings"], app.ctx.rulebook, poll_interval=poll)
    app.blueprint(settings_handlers.bp)
    return app


RULES = {
    "requestHeaderRules": [
        {"header": "x-stainless-os", "action": "block"},
        {"header": "x-team", "action": "set", "value": "platform"},
    ],
    "responseHeaderRules": [
        {
            "header": "anthropic-organization-id",
            "action": "replace",
            "find": "org-",
            "value": "o-",
            "enabled": False,
        },
    ],
}


async def test_change_reaches_second_replica_within_5s(db: AsyncDatabase) -> None:
    first, second = _replica("replica_a", db, 0.2), _replica("replica_b", db, 0.2)
    second.ctx.settings_store.start()
    try:
        _, resp = await first.asgi_client.put("/api/settings", json=RULES)
        assert resp.status == 200
        assert resp.json["requestHeaderRules"][1] == {
            "header": "x-team",
            "action": "set",
            "value": "platform",
            "enabled": True,
        }
        assert [r.header for r in first.ctx.rulebook.current.request] == [
            "x-stainless-os",
            "x-team",
        ]
        loop = asyncio.get_running_loop()
        started = loop.time()
        # Polling is the point: the second replica learns of the change on its own.
        while not second.ctx.rulebook.current.request and loop.time() - started < 5:
            await asyncio.sleep(0.05)
        assert second.ctx.rulebook.current == first.ctx.rulebook.current
        _, got = await second.asgi_client.get("/api/settings")
        assert got.json == resp.json
    finally:
        await second.ctx.settings_store.stop()


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"", "not valid JSON"),
        (b"[]", "must be a JSON object"),
        (b'{"requestHeaderRules": [{"header": "x", "action": "explode"}]}', "action"),
        (
            b'{"requestHeaderRules": [{"header": "content-length", "action": "block"}]}',
            "content-length",
        ),
        (b'{"requestHeaderRules": [{"header": "bad header", "action": "block"}]}', "header"),
        (
            b'{"responseHeaderRules": [{"header": "x", "action": "set", "value": "a\\r\\nb: c"}]}',
            "value",
        ),
        (b'{"rules": []}', "unknown key"),
    ],
)
async def test_invalid_rules_are_400_and_change_nothing(
    db: AsyncDatabase, body: bytes, fragment: str
) -> None:
    app = _replica("replica_c", db, 1)
    _, resp = await app.asgi_client.put("/api/settings", content=body)
    assert resp.status == 400
    assert fragment in _message(resp.json)
    assert await db["settings"].count_documents({}) == 0


def _message(body: dict[str, Any]) -> str:
    """The rule's problem, from the dashboard API's error: the seed's `{"error",
    "details"}`, the details naming the rule and field."""
    assert body.get("error") == "Invalid settings", body
    assert set(body) == {"error", "details"}, body
    return body["details"]


async def test_a_stored_rule_with_a_field_its_action_ignores_still_loads(
    db: AsyncDatabase,
) -> None:
    # An older build stored a `block` rule with a 3,000-character `find` (found by
    # Schemathesis); reading it back must neither drop the rule set nor answer it.
    stored = {
        "requestHeaderRules": [
            {"header": "x-api-key", "action": "block", "find": "f" * 3000, "enabled": True},
            {"header": "x-team", "action": "set", "value": "ml", "find": "", "enabled": True},
        ],
        "responseHeaderRules": [],
    }
    await db["settings"].insert_one({"_id": SETTINGS_ID, "rules": stored, "version": 7})
    app = _replica("replica_d", db, 1)
    await app.ctx.settings_store.refresh()
    assert app.ctx.rulebook.current.request == (
        HeaderRule("x-api-key", "block"),
        HeaderRule("x-team", "set", value="ml"),
    )
    _, resp = await app.asgi_client.get("/api/settings")
    assert resp.json["requestHeaderRules"] == [
        {"header": "x-api-key", "action": "block", "enabled": True},
        {"header": "x-team", "action": "set", "value": "ml", "enabled": True},
    ]
    # A PUT of the same document is refused: new rules are held to the schema.
    _, put = await app.asgi_client.put("/api/settings", json=stored)
    assert put.status == 400 and "not used by action 'block'" in _message(put.json)


async def test_a_stored_document_the_validation_refuses_keeps_the_rules_in_force(
    db: AsyncDatabase,
) -> None:
    app = _replica("replica_e", db, 1)
    _, resp = await app.asgi_client.put("/api/settings", json=RULES)
    assert resp.status == 200
    before = app.ctx.rulebook.current
    too_long = {"requestHeaderRules": [{"header": "x", "action": "set", "value": "v" * 3000}]}
    await db["settings"].update_one(
        {"_id": SETTINGS_ID}, {"$set": {"rules": too_long}, "$inc": {"version": 1}}
    )
    await app.ctx.settings_store.refresh()
    assert app.ctx.rulebook.current == before
