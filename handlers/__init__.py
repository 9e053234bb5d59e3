"""HTTP handlers: one blueprint per endpoint group; parse, call one service, respond."""
