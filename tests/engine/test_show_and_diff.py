"""`cx strategy show` (treatments, policies, arbitration, band labels, ordered Mermaid) and
`cx strategy diff` in band terms: the exact text an analyst reads."""

from __future__ import annotations

import re
from pathlib import Path

from cx_pipelines.cli import main

ROOT = Path(__file__).resolve().parents[2]
SMALL_BANK = ROOT / "cx_pipelines" / "engine" / "examples" / "small_bank.yaml"
RETAIL = ROOT / "strategies" / "retail_bank.yaml"


def run(capsys, *arguments) -> tuple[int, str, str]:
    code = main(["strategy", *map(str, arguments)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_show_lists_treatments_policies_and_arbitration(capsys):
    code, out, _ = run(capsys, "show", SMALL_BANK)
    assert code == 0
    block = out[out.index("TREATMENTS (") : out.index("GOLDEN CASES")]
    assert block.splitlines() == [
        "TREATMENTS (catalogue order breaks score ties)",
        "  credit_card_offer: propensity p_credit_card, value 120, margin 0.4",
        "  savings_offer: propensity 0.05, value 50, margin 0.3, uplift scores.uplift_savings; "
        "own formula: score = uplift * margin * value",
        "  retention_call: propensity 0.2, value 200, margin 0.5",
        "  service_message: propensity 1, value 1, margin 1",
        "",
        "ENGAGEMENT POLICIES (a candidate is dropped with the reason)",
        "  eligibility:",
        "    credit_card_offer: requires age >= 18, else dropped as under_age",
        "  suitability:",
        "    credit_card_offer: requires not hardship, else dropped as financial_hardship",
        "    every treatment: requires risk_band != 'very_high', else dropped as risk_too_high",
        "  contact caps:",
        "    email: closed after 2 contacts in 7 days",
        "    every channel: closed after 6 contacts in 30 days",
        "  suppression: a treatment declined 3 times within 90 days is dropped",
        "",
        "ARBITRATION (highest score first; a null score is dropped)",
        "  formula: score = propensity * value * lever",
        "  levers: credit_card_offer 1.2, default 1",
        "  max per channel: 2",
        "",
    ]


def test_show_without_treatments_has_no_offer_sections(capsys):
    code, out, _ = run(capsys, "show", RETAIL)
    assert code == 0
    assert "TREATMENTS (" not in out and "ARBITRATION (" not in out


def test_show_labels_matrix_bands(capsys):
    code, out, _ = run(capsys, "show", RETAIL, "--mechanism", "limit_increase_matrix")
    assert code == 0
    assert out.splitlines()[1:3] == [
        "  rows: credit_card.credit_limit 0–401 | 401–601 | 601–801 | 801+",
        "  columns: credit_card.risk_score <401 | 401–601 | 601–801 | 801+",
    ]


def _edges(out: str, source: str) -> list[str]:
    return re.findall(rf"^\s*{source} -- \"([^\"]+)\" --> ", out, flags=re.M)


def test_mermaid_numbers_branches_and_rules_in_first_match_order(capsys):
    code, out, _ = run(capsys, "show", SMALL_BANK, "--mermaid")
    assert code == 0
    assert _edges(out, "risk_band_tree_root") == [
        "1. risk_score #lt; 520",
        "2. risk_score #lt; 560",
        "3. risk_score #lt; 600",
        "4. else",
    ]
    assert _edges(out, "card_tree_node_1") == ["1. credit_card.balance #lt;= 500", "2. else"]
    assert _edges(out, "first_match_segments") == ["1. income #gt;= 100000", "2. else"]
    assert _edges(out, "first_match_categories") == [
        "1. risk_score #gt;= 600 and income #gt;= 100000",
        "2. risk_score #gt;= 560",
        "3. else",
    ]
    assert re.findall(r'process_periodic_review_card_summary -\. "(\d)" \.-> (\w+)', out) == [
        ("1", "mechanism_count_cards_to_review"),
        ("2", "mechanism_sum_card_balance"),
        ("3", "mechanism_any_overlimit"),
    ]
    assert (
        '  mechanism_limit_matrix("limit_matrix: matrix over every credit_card -#gt; '
        "credit_card.limit_increase; rows credit_card.credit_limit 0–401 | 401–601 | 601+; "
        'columns credit_card.behaviour_score #lt;401 | 401–601 | 601+")'
    ) in out.splitlines()


def test_diff_names_matrix_cells_and_axes_in_bands(capsys, tmp_path):
    text = SMALL_BANK.read_text()
    edits = [
        ("      - [0, 400, 500]\n", "      - [0, 400, 550]\n"),
        (
            "bands: [[0, 401], [401, 601], [601, null]]",
            "bands: [[0, 451], [451, 601], [601, null]]",
        ),
    ]
    for old, new in edits:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    changed = tmp_path / "changed.yaml"
    changed.write_text(text)
    code, out, _ = run(capsys, "diff", SMALL_BANK, changed)
    assert code == 0
    assert out.splitlines()[3:] == [
        "mechanisms: 2 changes",
        "  ~ mechanisms.limit_matrix.rows.bands (rows of credit_card.credit_limit): "
        "0–401 | 401–601 | 601+ -> 0–451 | 451–601 | 601+",
        "  ~ mechanisms.limit_matrix.values[1][2] (cell credit_card.credit_limit 451–601 × "
        "credit_card.behaviour_score 601+): 500 -> 550",
    ]


def test_diff_of_a_retail_matrix_cell_and_a_new_row(capsys, tmp_path):
    text = RETAIL.read_text()
    old = "bands: [[0, 401], [401, 601], [601, 801], [801, null]]"
    assert text.count(old) == 1
    text = text.replace(old, "bands: [[0, 401], [401, 601], [601, 801], [801, 1001], [1001, null]]")
    row = "      - [1000, 600, 300, 0]"
    assert text.count(row) == 1
    text = text.replace(row, row + "\n      - [1200, 700, 350, 0]")
    changed = tmp_path / "changed.yaml"
    changed.write_text(text)
    code, out, _ = run(capsys, "diff", RETAIL, changed)
    assert code == 0
    assert out.splitlines()[3:] == [
        "mechanisms: 2 changes",
        "  ~ mechanisms.limit_increase_matrix.rows.bands (rows of credit_card.credit_limit): "
        "0–401 | 401–601 | 601–801 | 801+ -> 0–401 | 401–601 | 601–801 | 801–1001 | 1001+",
        "  + mechanisms.limit_increase_matrix.values[4] (row credit_card.credit_limit 1001+): "
        "[1200, 700, 350, 0]",
    ]
