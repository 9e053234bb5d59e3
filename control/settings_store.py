"""Header-rule settings kept in MongoDB, so every replica applies the same rules.

One document (`_id: "proxy"`) in the `settings` collection carries the rules and
a version. Each worker polls it every POLL_INTERVAL seconds and swaps its
`RuleBook` when the version changed, so a change made through any replica is in
force everywhere within POLL_INTERVAL plus one read (well under 5 s). A save
also applies locally at once.

Stored rules are read back leniently: a text field a rule's action does not use
(which older builds accepted and kept) is dropped, so the document loads whole and
`GET /api/settings` answers only what the OpenAPI schema admits. A stored document
the current validation refuses otherwise is logged and the rules in force kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import PyMongoError

from control.header_rules import HeaderRule, parse_settings, settings_document
from control.plan import HeaderRuleSet, RuleBook

logger = logging.getLogger("proxy.settings")

SETTINGS_ID = "proxy"
POLL_INTERVAL = 2.0


class SettingsStore:
    def __init__(
        self,
        collection: AsyncCollection[Any],
        rulebook: RuleBook,
        poll_interval: float = POLL_INTERVAL,
    ) -> None:
        self._collection = collection
        self._rulebook = rulebook
        self._poll_interval = poll_interval
        self._version: int | None = None
        self._task: asyncio.Task[None] | None = None

    def document(self) -> dict[str, Any]:
        current = self._rulebook.current
        return settings_document(list(current.request), list(current.response))

    async def refresh(self) -> None:
        """Load the stored rules if they changed since the last look."""
        stored = await self._collection.find_one({"_id": SETTINGS_ID})
        if stored is None:
            return
        version = stored.get("version")
        if version == self._version:
            return
        try:
            request_rules, response_rules = parse_settings(stored.get("rules") or {}, lenient=True)
        except ValueError as exc:  # written by an older or newer build: keep what we have
            logger.error("stored header rules are invalid, keeping the current ones: %s", exc)
            return
        self._apply(request_rules, response_rules, version)

    async def save(self, request_rules: list[HeaderRule], response_rules: list[HeaderRule]) -> None:
        document = settings_document(request_rules, response_rules)
        result = await self._collection.find_one_and_update(
            {"_id": SETTINGS_ID},
            {"$set": {"rules": document, "updatedAt": datetime.now(UTC)}, "$inc": {"version": 1}},
            upsert=True,
            return_document=True,
        )
        self._apply(request_rules, response_rules, result["version"] if result else None)

    def _apply(
        self, request_rules: list[HeaderRule], response_rules: list[HeaderRule], version: int | None
    ) -> None:
        self._rulebook.current = HeaderRuleSet(tuple(request_rules), tuple(response_rules))
        self._version = version
        logger.info(
            "header rules version %s in force: %d request, %d response",
            version,
            len(request_rules),
            len(response_rules),
        )

    def start(self) -> None:
        self._task = asyncio.create_task(self._watch(), name="settings-watch")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _watch(self) -> None:
        while True:
            try:
                await self.refresh()
            except PyMongoError as exc:  # the database being away must not stop the proxy
                logger.warning("could not refresh header rules: %s", exc)
            await asyncio.sleep(self._poll_interval)
