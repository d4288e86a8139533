"""Property tests of the gateway's frame handling, without a network.

Whatever a charger sends, ``framing.parse`` either reads a message or raises
``FrameError``, and each dialect turns every outcome into a CALLERROR code of
its own version. A call whose payload fits its schema, however odd its values,
either becomes an event that the SG can read back or is refused with a code.
The per-charger budget of ``spr_gateway.limits`` never lets more through
than its rate allows.
"""

import json
import math
from collections.abc import Callable
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import ocpp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ocpp.exceptions import OCPPError
from ocpp.messages import Call, CallError, CallResult

from bus.contract import EventEnvelope
from spr_gateway import inbound, v16, v201
from spr_gateway.codec import decode, encode
from spr_gateway.dialect import DecisionRoute, Dialect, EventRoute, LocalRoute
from spr_gateway.errors import CallErrorReply
from spr_gateway.framing import (
    MAX_UNIQUE_ID,
    UNKNOWN_ID,
    FrameError,
    error_frame,
    parse,
    validate_payload,
    validation_text,
)
from spr_gateway.limits import FrameBudget, Limits, UnreadableRun, Verdict
from tests.integration.gateway_support import CALLERROR_CODES

pytestmark = pytest.mark.timeout(120)

DIALECTS = [v16.DIALECT, v201.DIALECT]
# Other test runs share this machine's two cores: no deadline per example.
UNHURRIED = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
SCHEMAS = Path(ocpp.__file__).parent

# -- frames ------------------------------------------------------------------------

# JSON values as Python's json module reads them, NaN and infinities included.
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=10**30, max_value=10**60)
    | st.floats()
    | st.text(max_size=50)
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=20,
)
actions = st.sampled_from(
    sorted({*v16.DIALECT.routes, *v201.DIALECT.routes, "TeleportVehicle", ""})
)
unique_ids = (
    st.text(min_size=1, max_size=MAX_UNIQUE_ID)
    | st.text(min_size=MAX_UNIQUE_ID + 1, max_size=60)
    | st.just("")
    | scalars
)
message_type_ids = st.sampled_from([2, 3, 4]) | st.integers(-5, 10) | scalars
# Arrays shaped like OCPP-J frames: the right length or near it, each element
# either of the right type or anything at all.
ocpp_shaped = st.tuples(
    message_type_ids,
    unique_ids,
    actions | json_values,
    st.dictionaries(st.text(max_size=20), json_values, max_size=4) | json_values,
    st.lists(json_values, max_size=2),
).flatmap(
    lambda parts: st.integers(0, len(parts[:4]) + len(parts[4])).map(
        lambda size: [*parts[:4], *parts[4]][:size]
    )
)
frames = (
    st.text() | st.binary() | json_values.map(json.dumps) | ocpp_shaped.map(json.dumps)
)


def check_callerror(frame: str, dialect: Dialect, unique_id: str) -> None:
    """Assert that ``frame`` is a CALLERROR of ``dialect``'s version for the id."""
    message = parse(frame)
    assert isinstance(message, CallError)
    assert message.unique_id == unique_id
    assert message.error_code in CALLERROR_CODES[dialect.version]


def check_frame_error(exc: FrameError) -> None:
    """Assert that each dialect answers ``exc`` with a CALLERROR of its version."""
    unique_id = exc.unique_id or UNKNOWN_ID
    for dialect in DIALECTS:
        answer = error_frame(unique_id, dialect.frame_faults[exc.fault], exc.detail)
        check_callerror(answer, dialect, unique_id)


@settings(UNHURRIED, max_examples=500)
@given(raw=frames)
def test_any_frame_is_read_or_refused_with_a_frame_error(raw: str | bytes) -> None:
    try:
        message = parse(raw)
    except FrameError as exc:
        check_frame_error(exc)
        return

    assert isinstance(message.unique_id, str)
    assert 0 < len(message.unique_id) <= MAX_UNIQUE_ID
    if isinstance(message, Call):
        assert isinstance(message.action, str)
    if isinstance(message, CallResult):
        assert isinstance(message.payload, dict)


@settings(UNHURRIED, max_examples=300)
@given(
    unique_id=st.text(min_size=1, max_size=MAX_UNIQUE_ID),
    action=actions | st.text(max_size=40),
    payload=st.dictionaries(st.text(max_size=20), json_values, max_size=4)
    | json_values,
)
@pytest.mark.parametrize("dialect", DIALECTS, ids=lambda d: d.subprotocol)
async def test_any_call_is_routed_or_refused_with_a_code_of_its_version(
    dialect: Dialect, unique_id: str, action: str, payload: Any
) -> None:
    call = parse(json.dumps([2, unique_id, action, payload]))
    assert isinstance(call, Call)

    route = dialect.routes.get(call.action)
    if route is None:
        check_callerror(error_frame(unique_id, "NotImplemented"), dialect, unique_id)
        return
    try:
        await validate_payload(call, dialect.version.value)
    except OCPPError as exc:
        code = dialect.error_code(exc.code)
        text = validation_text(exc)
        assert 0 < len(text) <= 200
        check_callerror(error_frame(unique_id, code, text), dialect, unique_id)
        return
    await translate_or_refuse(dialect, route, call)


# -- calls that fit their schema ---------------------------------------------------


@cache
def schema(version: str, action: str) -> dict[str, Any]:
    """Return the request schema of ``action`` in OCPP ``version``."""
    folder, suffix = {"1.6": ("v16", ""), "2.0.1": ("v201", "Request")}[version]
    path = SCHEMAS / folder / "schemas" / f"{action}{suffix}.json"
    loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8-sig"))
    return loaded


# What the schemas leave open: date-times are only strings to them, numbers
# need not be finite, integers need not fit anything.
date_times = (
    st.datetimes(timezones=st.none() | st.just(UTC)).map(datetime.isoformat)
    | st.sampled_from(["2025-03-01T12:00:00Z", "2025-13-45T99:00:00Z", "", "now"])
    | st.text(max_size=30)
)
numbers = st.floats() | st.integers() | st.integers(10**300, 10**310)


def from_schema(node: dict[str, Any], root: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Return a strategy of values that fit the Draft 4 schema ``node``.

    Covers what the OCPP request schemas use: ``$ref``, objects with required
    and optional properties, arrays with bounds, enums, strings with a
    maximum length, integers and numbers with bounds, and untyped values.
    """
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        return from_schema(root["definitions"][name], root)
    if "enum" in node:
        return st.sampled_from(node["enum"])
    if "type" not in node:
        return json_values  # DataTransfer's data: anything at all
    strategies: dict[str, Callable[[], st.SearchStrategy[Any]]] = {
        "object": lambda: objects(node, root),
        "array": lambda: st.lists(
            from_schema(node["items"], root),
            min_size=node.get("minItems", 0),
            max_size=min(node.get("maxItems", 3), 3),
        ),
        "string": lambda: strings(node),
        "integer": lambda: st.integers(node.get("minimum"), node.get("maximum")).filter(
            lambda n: n % node.get("multipleOf", 1) == 0
        ),
        "number": lambda: numbers.filter(lambda n: in_bounds(n, node)),
        "boolean": st.booleans,
    }
    return strategies[node["type"]]()


def objects(node: dict[str, Any], root: dict[str, Any]) -> st.SearchStrategy[Any]:
    properties = node.get("properties", {})
    required = set(node.get("required", ()))
    return st.fixed_dictionaries(
        {name: from_schema(properties[name], root) for name in sorted(required)},
        optional={
            name: from_schema(sub, root)
            for name, sub in properties.items()
            if name not in required
        },
    )


def strings(node: dict[str, Any]) -> st.SearchStrategy[str]:
    limit = node.get("maxLength", 60)
    text = date_times if node.get("format") == "date-time" else st.text(max_size=60)
    return text.map(lambda value: value[:limit])


def in_bounds(number: float, node: dict[str, Any]) -> bool:
    low, high = node.get("minimum"), node.get("maximum")
    if isinstance(number, float) and math.isnan(number):
        return True  # NaN compares false to every bound, so it passes them
    return (low is None or number >= low) and (high is None or number <= high)


TRANSLATED = [
    (dialect, action)
    for dialect in DIALECTS
    for action, route in dialect.routes.items()
    if not isinstance(route, LocalRoute)
]


@settings(UNHURRIED, max_examples=50)
@given(data=st.data())
@pytest.mark.parametrize(
    ("dialect", "action"),
    TRANSLATED,
    ids=[f"{d.subprotocol}-{a}" for d, a in TRANSLATED],
)
async def test_a_call_that_fits_its_schema_becomes_a_readable_event_or_a_callerror(
    dialect: Dialect, action: str, data: st.DataObject
) -> None:
    root = schema(dialect.version.value, action)
    payload = data.draw(from_schema(root, root), label="payload")
    call = parse(json.dumps([2, "fuzz-1", action, payload]))
    assert isinstance(call, Call)
    # The generator fits the schema, as the gateway checks it.
    await validate_payload(call, dialect.version.value)

    await translate_or_refuse(dialect, dialect.routes[action], call)


async def translate_or_refuse(dialect: Dialect, route: Any, call: Call) -> None:
    """Assert that a valid call's route translates it or refuses it with a code."""
    if isinstance(route, LocalRoute):
        await validate_payload(
            CallResult(call.unique_id, route.respond(), call.action),
            dialect.version.value,
        )
        return
    assert isinstance(route, EventRoute | DecisionRoute)
    try:
        event = inbound.to_event(route, call.payload)
    except CallErrorReply as exc:
        assert exc.code in CALLERROR_CODES[dialect.version]
        check_callerror(
            error_frame(call.unique_id, exc.code, exc.description),
            dialect,
            call.unique_id,
        )
        return
    envelope = EventEnvelope(
        message_id=call.unique_id,
        charger_id="CP-1",
        ocpp_version=dialect.version,
        gateway_id="gw-1",
        event=event,
    )
    assert decode(EventEnvelope, encode(envelope)) == envelope


# -- the budget --------------------------------------------------------------------

limits = st.builds(
    Limits,
    rate_per_s=st.floats(0.5, 100),
    burst=st.integers(1, 60),
    flood_close_s=st.floats(0.1, 30),
    max_unreadable=st.integers(1, 20),
)
# Gaps between frames: floods, a steady trickle, pauses.
gaps = st.lists(
    st.sampled_from([0.0, 0.0, 0.0]) | st.floats(0, 0.2) | st.floats(0, 30),
    min_size=1,
    max_size=400,
)


@UNHURRIED
@given(limits=limits, gaps=gaps)
def test_the_budget_never_admits_more_than_its_rate_and_burst(
    limits: Limits, gaps: list[float]
) -> None:
    budget = FrameBudget(limits, 0.0)
    now = 0.0
    handled: list[float] = []  # when each admitted frame may be handled
    verdicts: list[tuple[float, Verdict]] = []

    for gap in gaps:
        now += gap
        ticket = budget.take(now)
        verdicts.append((now, ticket.verdict))
        if ticket.verdict is Verdict.ADMIT:
            assert 0.0 <= ticket.wait_s <= 1.0 / limits.rate_per_s + 1e-9
            handled.append(now + ticket.wait_s)

    # Over any stretch of time, at most a burst and the rate's worth.
    for first, start in enumerate(handled):
        for last in range(first, len(handled)):
            window = handled[last] - start
            assert last - first + 1 <= limits.burst + window * limits.rate_per_s + 1
    # A flood is told once: a new one needs the bucket full again, hence a
    # whole burst admitted in between. It closes only after flood_close_s.
    admitted = 0
    flood_at: float | None = None
    for at, verdict in verdicts:
        if verdict is Verdict.ADMIT:
            admitted += 1
        elif verdict is Verdict.FLOOD:
            assert flood_at is None or admitted >= limits.burst
            flood_at, admitted = at, 0
        else:
            assert flood_at is not None
        if verdict is Verdict.CLOSE:
            assert flood_at is not None
            assert at - flood_at >= limits.flood_close_s


@UNHURRIED
@given(limits=limits, steps=st.integers(1, 300), think_s=st.floats(0.0, 0.05))
def test_a_charger_that_waits_for_each_answer_is_never_refused(
    limits: Limits, steps: int, think_s: float
) -> None:
    budget = FrameBudget(limits, 0.0)
    now = 0.0

    for _ in range(steps):
        ticket = budget.take(now)
        assert ticket.verdict is Verdict.ADMIT
        # The answer comes after the wait; the next call a round trip later.
        now += ticket.wait_s + 0.001 + think_s

    assert now >= (steps - limits.burst - 1) / limits.rate_per_s


def test_a_flood_is_told_once_then_closes_after_its_time() -> None:
    budget = FrameBudget(
        Limits(rate_per_s=1.0, burst=2, flood_close_s=3.0, max_unreadable=3), 0.0
    )

    verdicts = [budget.take(0.0).verdict for _ in range(4)]
    for now in (1.0, 2.0, 3.0):
        verdicts += [budget.take(now).verdict, budget.take(now).verdict]

    admit, refuse = Verdict.ADMIT, Verdict.REFUSE
    assert verdicts[:4] == [admit, admit, Verdict.FLOOD, refuse]
    assert verdicts[4:] == [admit, refuse, admit, refuse, admit, Verdict.CLOSE]
    assert budget.refused == 5
    assert budget.flood_s(3.0) == 3.0


def test_a_flood_ends_once_the_bucket_is_full_again() -> None:
    budget = FrameBudget(
        Limits(rate_per_s=1.0, burst=2, flood_close_s=5.0, max_unreadable=3), 0.0
    )
    for _ in range(3):
        budget.take(0.0)

    assert budget.take(1.0).verdict is Verdict.ADMIT  # one token back of two
    assert budget.take(1.0).verdict is Verdict.REFUSE  # the same flood
    assert budget.take(3.0).verdict is Verdict.ADMIT  # full at 3.0, then spent
    assert budget.refused == 0
    assert budget.take(3.0).verdict is Verdict.ADMIT
    assert budget.take(3.0).verdict is Verdict.FLOOD  # a new flood, told again


def test_unreadable_frames_close_only_in_a_row() -> None:
    run = UnreadableRun(3)

    assert [run.strike(), run.strike()] == [False, False]
    run.clear()
    assert [run.strike(), run.strike(), run.strike()] == [False, False, True]
