"""Count and time the API's HTTP requests for ``/metrics``.

Requests are labelled by the full template of the route that served them
(``/api/v1/chargers/{charger_id}``), never by the path as sent, so that ids
do not multiply the series. FastAPI keeps included routers nested and puts
the served route, with its path relative to its router, in the scope; the
full templates come from ``fastapi.routing.iter_route_contexts``, read once.
Plain Starlette routes (the docs) leave no route in the scope and are found
by their path; a request that matches no route is ``unmatched``.
"""

import re
from time import perf_counter
from typing import Any

from fastapi.routing import iter_route_contexts
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from moovolt import metrics

UNMATCHED = "unmatched"


class RouteTemplates:
    """The full path templates of an application's routes, by route object.

    One route object may serve under several prefixes (the probes answer at
    the root and under ``/api/v1``); the request's path tells which.
    """

    def __init__(self, routes: Any) -> None:
        self._templates: dict[int, list[tuple[re.Pattern[str], str]]] = {}
        self._all: list[tuple[re.Pattern[str], str]] = []
        for context in iter_route_contexts(routes):
            path = context.path
            if not path:
                continue
            regex, template, _ = compile_path(path)
            entry = (regex, template)
            self._templates.setdefault(id(context.original_route), []).append(entry)
            self._all.append(entry)

    def of(self, route: object, path: str) -> str:
        """Return the template of ``route`` that matches ``path``."""
        candidates = self._templates.get(id(route), [])
        for regex, template in candidates:
            if len(candidates) == 1 or regex.match(path):
                return template
        own = getattr(route, "path", None)
        return own if isinstance(own, str) and own else "/"

    def match(self, path: str) -> str:
        """Return the first template matching ``path``, or ``unmatched``."""
        for regex, template in self._all:
            if regex.match(path):
                return template
        return UNMATCHED


class RequestMetrics:
    """ASGI middleware: requests by method, route template and status.

    Args:
        app: the application it wraps.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._templates: RouteTemplates | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve the request through ``app``, then count and time it."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        started = perf_counter()
        # A request that fails before its response starts is answered 500.
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = self._template(scope)
            method = scope["method"]
            metrics.API_REQUESTS.labels(method, route, str(status)).inc()
            metrics.API_LATENCY.labels(method, route).observe(metrics.since(started))

    def _template(self, scope: Scope) -> str:
        # The router wrote the route it chose into the scope it shares with us.
        if self._templates is None:
            # Read on first use: every route is in place once requests come.
            self._templates = RouteTemplates(scope["app"].routes)
        route = scope.get("route")
        if route is None:
            return self._templates.match(scope["path"])
        return self._templates.of(route, scope["path"])
