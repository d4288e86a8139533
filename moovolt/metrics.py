"""Prometheus metrics of every moov.olt process, each on its own registry.

Every name starts with ``moovolt_``. A process exposes only its own registry
(``GATEWAY``, ``SG`` or ``API``) with the Python process collectors, so the
gateway's ``/metrics`` does not list the worker's metrics at zero. Label values
come from closed sets (versions, event kinds, outcomes, route templates),
never from what a peer sends; an action the gateway does not know is counted
as ``unknown``.

Counters incremented in activities count each execution: an activity that
Temporal retries after it succeeded (a worker crash before it reported) counts
twice.
"""

from time import perf_counter

import prometheus_client
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

# The *_created series double every counter's lines for little use.
prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]

# Decisions wait at most MOOVOLT_DECISION_TIMEOUT_S (10 s by default).
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
BATCH_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500)
UNKNOWN = "unknown"

# -- Gateway -------------------------------------------------------------------

GATEWAY_CONNECTIONS = Gauge(
    "moovolt_gateway_connections",
    "Chargers' WebSocket connections open on this gateway.",
    ["version"],
    registry=None,
)
GATEWAY_HANDSHAKES = Counter(
    "moovolt_gateway_handshakes",
    "WebSocket handshakes by outcome: accepted, or refused with an HTTP status.",
    ["outcome", "status"],
    registry=None,
)
GATEWAY_CHARGER_MESSAGES = Counter(
    "moovolt_gateway_charger_messages",
    "Calls from chargers by OCPP version, action and answer (result or the "
    "CALLERROR code).",
    ["version", "action", "outcome"],
    registry=None,
)
GATEWAY_DECISIONS = Histogram(
    "moovolt_gateway_decision_seconds",
    "Time from a decision request to the SG's answer, by event kind and "
    "outcome (answered, error, timeout, unavailable).",
    ["kind", "outcome"],
    buckets=LATENCY_BUCKETS,
    registry=None,
)
GATEWAY_EVENTS = Counter(
    "moovolt_gateway_events_published",
    "Fire-and-forget events put on the bus, by kind and outcome (confirmed, "
    "unavailable).",
    ["kind", "outcome"],
    registry=None,
)
GATEWAY_COMMAND_RESULTS = Counter(
    "moovolt_gateway_command_results",
    "Results of commands sent to chargers, by outcome.",
    ["outcome"],
    registry=None,
)

# -- SG (worker) ---------------------------------------------------------------

SG_DECISIONS = Histogram(
    "moovolt_sg_decision_seconds",
    "Time the SG took to decide on a charger's request, by event kind and "
    "outcome (ok, refused, error, failed).",
    ["kind", "outcome"],
    buckets=LATENCY_BUCKETS,
    registry=None,
)
SG_EVENTS_STORED = Counter(
    "moovolt_sg_events_stored",
    "Fire-and-forget events written to PostgreSQL, by kind.",
    ["kind"],
    registry=None,
)
SG_EVENT_BATCHES = Histogram(
    "moovolt_sg_event_batch_size",
    "Events taken together into one write, by outcome (stored, requeued, "
    "split: written again one by one).",
    ["outcome"],
    buckets=BATCH_BUCKETS,
    registry=None,
)
SG_EVENTS_DEAD_LETTERED = Counter(
    "moovolt_sg_events_dead_lettered",
    "Events sent to the dead letters, by kind (unknown: unreadable).",
    ["kind"],
    registry=None,
)
SG_SESSION_STATES = Counter(
    "moovolt_sg_session_states",
    "Session state changes recorded in PostgreSQL, by the state entered.",
    ["state"],
    registry=None,
)
SG_SESSIONS_ENDED = Counter(
    "moovolt_sg_sessions_ended",
    "Sessions that reached a final state, by that state.",
    ["state"],
    registry=None,
)
SG_COMMAND_RESULTS = Counter(
    "moovolt_sg_command_results",
    "Command results taken off the bus, by outcome and what became of them "
    "(delivered, gone: nobody waits any more, requeued, dropped).",
    ["outcome", "settled"],
    registry=None,
)

# -- API -----------------------------------------------------------------------

API_REQUESTS = Counter(
    "moovolt_api_requests",
    "HTTP requests by method, route template and status.",
    ["method", "route", "status"],
    registry=None,
)
API_LATENCY = Histogram(
    "moovolt_api_request_seconds",
    "HTTP request duration by method and route template.",
    ["method", "route"],
    buckets=LATENCY_BUCKETS,
    registry=None,
)


def _registry(*metrics: Collector) -> CollectorRegistry:
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    for metric in metrics:
        registry.register(metric)
    return registry


GATEWAY = _registry(
    GATEWAY_CONNECTIONS,
    GATEWAY_HANDSHAKES,
    GATEWAY_CHARGER_MESSAGES,
    GATEWAY_DECISIONS,
    GATEWAY_EVENTS,
    GATEWAY_COMMAND_RESULTS,
)
SG = _registry(
    SG_DECISIONS,
    SG_EVENTS_STORED,
    SG_EVENT_BATCHES,
    SG_EVENTS_DEAD_LETTERED,
    SG_SESSION_STATES,
    SG_SESSIONS_ENDED,
    SG_COMMAND_RESULTS,
)
API = _registry(API_REQUESTS, API_LATENCY)


def exposition(registry: CollectorRegistry) -> tuple[str, str]:
    """Return ``registry`` in the Prometheus text format, and its content type.

    Args:
        registry: ``GATEWAY``, ``SG`` or ``API``.

    Returns:
        The body and the value of its ``Content-Type`` header.
    """
    return generate_latest(registry).decode(), CONTENT_TYPE_LATEST


def count_charger_message(version: str, action: str | None, outcome: str) -> None:
    """Count one call from a charger and how it was answered.

    Args:
        version: the connection's OCPP version.
        action: the call's action if the gateway routes it, else None.
        outcome: ``result``, or the code of the CALLERROR sent back.
    """
    GATEWAY_CHARGER_MESSAGES.labels(version, action or UNKNOWN, outcome).inc()


def since(started: float) -> float:
    """Return the seconds elapsed since ``started`` (a ``perf_counter`` reading)."""
    return perf_counter() - started
