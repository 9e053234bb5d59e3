"""The request log in MongoDB (pymongo's native async API; Motor is deprecated)."""
