"""Process-level runtime: settings, live state, lifecycle and drain."""
