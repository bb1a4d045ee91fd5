"""A single decision's answer and decision-log line, rendered once together
(``decide._answer_and_line``), are the bytes ``orjson.dumps`` gives of the answer and of
the log entry (its trace last), traced or not, on each online store; and the decision
time's text equals ``datetime``'s for any moment."""

from __future__ import annotations

import datetime as dt

import orjson
from hypothesis import given
from hypothesis import strategies as st
from test_batch_path import NOW, _requests, state  # noqa: F401  (state: a fixture)

from cx_pipelines.service.decide import decide, decided_at


def test_a_single_answer_and_its_line_are_their_plain_renderings(state):  # noqa: F811
    traced = untraced = 0
    for request in _requests(40):
        decided = decide(state, state.deployment, request, now=NOW)
        logged = orjson.loads(decided.line)
        assert decided.line == orjson.dumps(logged, option=orjson.OPT_APPEND_NEWLINE)
        assert list(logged)[-1] == "trace"
        assert decided.body == orjson.dumps(decided.answer, option=orjson.OPT_SERIALIZE_NUMPY)
        if request.include_trace and logged["trace"] is not None:
            traced += 1
            assert orjson.loads(decided.body) == logged
            assert list(decided.answer)[-1] == "trace"
        else:
            untraced += 1
            assert orjson.loads(decided.body) == {k: v for k, v in logged.items() if k != "trace"}
        assert logged["decided_at"] == decided_at(NOW)
    assert traced and untraced


@given(
    st.floats(min_value=1e9, max_value=4e9)
    | st.integers(min_value=10**15, max_value=4 * 10**15).map(lambda us: us / 1e6 + 5e-7)
)
def test_the_decision_time_is_datetimes_isoformat(now):
    expected = dt.datetime.fromtimestamp(now, dt.UTC).isoformat(timespec="microseconds")
    assert decided_at(now) == expected
