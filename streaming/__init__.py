"""Protocol logic between the handlers and storage: upstream client, relay, SSE."""
