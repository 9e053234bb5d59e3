"""Worker start-up: what the listeners leave behind for serving."""

from __future__ import annotations

import gc

from app import create_app
from runtime.settings import Settings


def test_startup_objects_are_frozen_out_of_garbage_collection() -> None:
    gc.unfreeze()
    app = create_app(
        Settings.from_env({"ANTHROPIC_FORWARD_URL": "http://127.0.0.1:9", "REQUEST_LOG": "false"})
    )
    try:
        # sanic-testing's test_client runs Sanic's own server on a real socket.
        _, resp = app.test_client.get("/livez")
        assert resp.status == 200
        # Routes, OpenAPI models and libraries: tens of thousands of objects.
        assert gc.get_freeze_count() > 10_000
    finally:
        gc.unfreeze()
