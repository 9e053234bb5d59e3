"""Completes the operations sanic-ext collected from the routes:

- a route that names `HEAD` or `OPTIONS` itself (the `/v1/*` passthrough, the
  `HEAD /` probe) is documented with them. sanic-ext leaves both out everywhere
  (OAS_IGNORE_HEAD/OPTIONS), which is right only for the ones Sanic adds on its
  own to every GET route;
- every operation has its own `operationId`. sanic-ext keeps one operation object
  per handler, so a handler serving several methods would repeat one id (OpenAPI
  forbids that): each method gets a copy named `<handler's operationId><Method>`,
  e.g. `passthroughGet`.

Runs after sanic-ext's own `before_server_start` listener (OPERATIONS_PRIORITY),
on the objects both spec routes (ours and the UI's) serialize.
"""

from __future__ import annotations

import copy
from collections import defaultdict

from sanic import Sanic
from sanic_ext.config import PRIORITY
from sanic_ext.extensions.openapi.builders import (
    OperationBuilder,
    OperationStore,
    SpecificationBuilder,
)
from sanic_ext.utils.route import get_all_routes

# Lower runs later: after sanic-ext's operation collection (PRIORITY).
OPERATIONS_PRIORITY = PRIORITY - 1
EXPLICIT_ONLY = ("HEAD", "OPTIONS")


def finish_operations(app: Sanic) -> None:
    # sanic-ext has no public accessor for the collected paths.
    paths = SpecificationBuilder()._paths
    store = OperationStore()
    for uri, _name, _params, method_handlers, _host in get_all_routes(
        app, app.config.OAS_URL_PREFIX
    ):
        for method, handler in method_handlers:
            if method not in EXPLICIT_ONLY or is_automatic(handler):
                continue
            operation = store[handler]
            if operation._exclude:
                continue
            operation._app = app
            paths[uri][method.lower()] = operation
    for operations in paths.values():
        _one_id_per_method(app, operations)


def is_automatic(handler: object) -> bool:
    """A HEAD/OPTIONS handler sanic-ext added on its own (for every GET route)."""
    return bool(getattr(handler, "__auto_handler__", False))


def _one_id_per_method(app: Sanic, operations: dict[str, OperationBuilder]) -> None:
    methods_of: dict[int, list[str]] = defaultdict(list)
    for method, operation in operations.items():
        if isinstance(operation, OperationBuilder) and operation._app is app:
            methods_of[id(operation)].append(method)
    for methods in methods_of.values():
        if len(methods) < 2:
            continue
        shared = operations[methods[0]]
        base = getattr(shared, "operationId", None) or shared._default["operationId"]
        for method in methods:
            own = copy.copy(shared)
            own._default = dict(shared._default)
            own.operationId = base + method.capitalize()
            operations[method] = own
