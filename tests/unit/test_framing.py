"""Frames no JSON parser should let through end as a FrameError, never a crash."""

import pytest

from spr_gateway.framing import FrameError, FrameFault, parse


@pytest.mark.parametrize(
    "raw",
    [
        '[2,"1","Heartbeat",{"n":' + "9" * 5000 + "}]",  # past int's digit limit
        "[" * 100_000 + "]" * 100_000,  # past the parser's nesting limit
        "not json",
    ],
    ids=["huge-integer", "deep-nesting", "text"],
)
def test_unreadable_frames_are_frame_errors(raw: str) -> None:
    with pytest.raises(FrameError) as error:
        parse(raw)
    assert error.value.fault is FrameFault.NOT_JSON
