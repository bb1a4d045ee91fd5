"""The dataflow check at load: nothing on an event's path is read before it is set."""

from __future__ import annotations

from pathlib import Path

import pytest

from cx_pipelines.engine import check_strategy

EXAMPLE = (
    Path(__file__).resolve().parents[2] / "cx_pipelines" / "engine" / "examples" / "small_bank.yaml"
)
REVIEW = "processes: [risk, card_review, card_summary, propensity, product_choice, hardship_check]"


def errors_of(tmp_path: Path, old: str, new: str) -> tuple[list, str, Path]:
    text = EXAMPLE.read_text()
    assert text.count(old) == 1, old
    text = text.replace(old, new)
    path = tmp_path / "strategy.yaml"
    path.write_text(text)
    errors, _ = check_strategy(path)
    return errors, text, path


def line_of(text: str, fragment: str) -> int:
    assert text.count(fragment) == 1, fragment
    return text[: text.index(fragment)].count("\n") + 1


def test_the_shipped_strategies_read_nothing_before_it_is_set():
    root = EXAMPLE.parents[3]
    for path in [EXAMPLE, *sorted((root / "strategies").glob("*.yaml"))]:
        assert check_strategy(path) == ([], []), path


def test_reading_a_derived_attribute_before_its_process_runs_is_an_error(tmp_path):
    errors, text, path = errors_of(
        tmp_path,
        REVIEW,
        "processes: [risk, card_review, propensity, product_choice, card_summary, hardship_check]",
    )
    assert [(e.describe()) for e in errors] == [
        f"{path}:{line_of(text, '{id: credit_card, when: cards_to_review == 0')}, "
        "mechanisms.product_list.items[0].when: mechanism 'product_list' reads "
        "'cards_to_review' before any mechanism of event 'periodic_review' writes it (it would "
        "be null; written by count_cards_to_review: run that earlier in the event's processes)"
    ]


def test_reading_what_the_event_never_writes_is_an_error(tmp_path):
    errors, text, _ = errors_of(
        tmp_path,
        "    processes: [risk, propensity]\n",
        "    processes: [propensity, product_choice]\n",
    )
    assert [e.message for e in errors] == [
        "mechanism 'product_list' reads 'cards_to_review' before any mechanism of event "
        "'inbound_call' writes it (it would be null; written by count_cards_to_review: run that "
        "earlier in the event's processes)",
        "mechanism 'product_list' reads 'risk_band' before any mechanism of event "
        "'inbound_call' writes it (it would be null; written by risk_band_tree: run that "
        "earlier in the event's processes)",
    ]
    assert errors[1].location.line == line_of(text, "{id: loan, when: risk_band == 'low'")


def test_category_is_not_readable_by_a_mechanism(tmp_path):
    errors, text, _ = errors_of(
        tmp_path,
        "      - when: risk_score < 520\n        then: very_high",
        "      - when: risk_score < 520 or category == 'gold'\n        then: very_high",
    )
    assert {e.message for e in errors} == {
        f"mechanism 'risk_band_tree' reads 'category', which is not set yet on event {event!r}: "
        "category is readable in account actions and treatments (it is set after the processes)"
        for event in ("periodic_review", "inbound_call")
    }
    assert {e.location.line for e in errors} == {line_of(text, "or category == 'gold'")}
    assert {e.location.path for e in errors} == {"mechanisms.risk_band_tree.tree[0].when"}


@pytest.mark.parametrize(
    ("condition", "message"),
    [
        (
            "income >= 100000 and risk_score > 500",
            "the segment condition reads 'risk_score', which is not set yet: segments are "
            "decided before any process runs",
        ),
        (
            "income >= 100000 and test_group == 'champion'",
            "the segment condition reads 'test_group', which is not set yet: 'test_group' is "
            "readable from the processes on (not in segment conditions)",
        ),
        (
            "income >= 100000 and segment == 'mass'",
            "the segment condition reads 'segment', which is not set yet: 'segment' is "
            "readable from the processes on (not in segment conditions)",
        ),
    ],
)
def test_segment_conditions_read_only_inputs(tmp_path, condition, message):
    errors, text, path = errors_of(
        tmp_path, "    when: income >= 100000\n", f"    when: {condition}\n"
    )
    assert [e.message for e in errors] == [message]
    assert errors[0].location.file == str(path)
    assert errors[0].location.line == line_of(text, f"    when: {condition}\n")


def test_a_category_rule_reading_what_the_event_never_writes_is_an_error(tmp_path):
    errors, text, _ = errors_of(
        tmp_path,
        "    - {name: gold, when: risk_score >= 560}",
        "    - {name: gold, when: risk_score >= 560 and not hardship}",
    )
    assert errors == []  # periodic review runs hardship_check before the categories
    errors, text, _ = errors_of(
        tmp_path,
        REVIEW,
        "processes: [card_review, card_summary, propensity, product_choice, hardship_check]",
    )
    messages = [e.message for e in errors]
    assert (
        "a category rule reads 'risk_score' before any mechanism of event 'periodic_review' "
        "writes it (it would be null; written by risk_scorecard: run that earlier in the "
        "event's processes)"
    ) in messages
