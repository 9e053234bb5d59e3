"""Conversation fixtures: the storage tests' per-test database."""

from tests.storage.conftest import db

__all__ = ["db"]
