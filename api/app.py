"""The moov.olt HTTP API and the dashboard, as one FastAPI application."""

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles

from api import deps, problems
from api.live import LiveFeed
from api.metrics import RequestMetrics
from api.routes import (
    audit,
    cdrs,
    chargers,
    commands,
    events,
    firmware,
    health,
    id_tokens,
    operators,
    payments,
    reservations,
    sessions,
    tariffs,
    variables,
    webhooks,
)
from api.temporal_link import TemporalLink
from moovolt.settings import Settings
from store.db import make_engine, make_sessionmaker

logger = logging.getLogger(__name__)

API_PREFIX = "/api/v1"
DASHBOARD = Path(__file__).resolve().parent.parent / "dashboard"


def _operation_id(route: APIRoute) -> str:
    # "{tag}-{name}": stable names for the dashboard's generated client.
    return f"{route.tags[0]}-{route.name}" if route.tags else route.name


def _openapi(app: FastAPI) -> Callable[[], dict[str, Any]]:
    """Return ``app.openapi`` adding who may call what and the problem bodies."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build()
            deps.document_roles(app.routes, schema)
            problems.document_problems(schema)
        assert app.openapi_schema is not None
        return app.openapi_schema

    return openapi


def _mount_dashboard(app: FastAPI, dashboard: Path) -> None:
    dist = dashboard / "dist"
    if dist.is_dir():
        app.mount("/", StaticFiles(directory=dist, html=True), name="dashboard")
        return

    placeholder = dashboard / "index.html"

    @app.get("/", include_in_schema=False)
    async def dashboard_placeholder() -> FileResponse:
        return FileResponse(placeholder, media_type="text/html")


def create_app(settings: Settings, *, dashboard: Path = DASHBOARD) -> FastAPI:
    """Build the API application.

    Its lifespan opens the database engine and starts connecting to Temporal
    in the background, so the API answers even while Temporal boots.

    Args:
        settings: configuration of this process.
        dashboard: directory holding ``dist/`` (a built dashboard) or the
            placeholder ``index.html``.

    Returns:
        The application, ready for uvicorn or an ASGI test transport.
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(settings.database_url)
        link = TemporalLink(settings)
        app.state.sessionmaker = make_sessionmaker(engine)
        app.state.temporal = link
        app.state.live = LiveFeed(settings.amqp_url, settings.bus_prefix)
        link.start()
        try:
            yield
        finally:
            await app.state.live.close()
            await link.close()
            await engine.dispose()

    app = FastAPI(
        title="moov.olt",
        summary="Charging Station Management System API",
        version="1",
        lifespan=lifespan,
        generate_unique_id_function=_operation_id,
    )
    app.state.settings = settings
    problems.install(app)
    app.add_middleware(RequestMetrics)

    app.include_router(health.router)
    # Probes answer under the API prefix too, for proxies that route only it.
    app.include_router(health.router, prefix=API_PREFIX, include_in_schema=False)
    app.include_router(health.metrics_router)

    api = APIRouter(prefix=API_PREFIX)
    api.include_router(chargers.router)
    api.include_router(variables.router)
    api.include_router(commands.router)
    api.include_router(reservations.router)
    api.include_router(firmware.router)
    api.include_router(sessions.router)
    api.include_router(cdrs.router)
    api.include_router(payments.router)
    api.include_router(id_tokens.router)
    api.include_router(tariffs.router)
    api.include_router(operators.router)
    api.include_router(audit.router)
    api.include_router(events.router)
    api.include_router(webhooks.router)
    app.include_router(api)

    app.openapi = _openapi(app)  # type: ignore[method-assign]

    _mount_dashboard(app, dashboard)
    return app
