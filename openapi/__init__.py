"""OpenAPI: shared schemas as named components, and the spec document routes."""
