"""`cx campaign validate`: the shipped folder passes; a broken file is named with its line."""

from __future__ import annotations

import shutil
from pathlib import Path

from cx_pipelines.cli import main

SHIPPED = Path(__file__).resolve().parents[2] / "strategies" / "campaigns"


def test_shipped_campaigns_validate(capsys) -> None:
    assert main(["campaign", "validate", str(SHIPPED)]) == 0
    output = capsys.readouterr().out
    assert "ok  card_young_mobile" in output and "9 valid, 0 errors" in output


def test_a_broken_campaign_is_reported_and_fails(tmp_path: Path, capsys) -> None:
    folder = tmp_path / "campaigns"
    shutil.copytree(SHIPPED, folder)
    path = folder / "card_email.yaml"
    path.write_text(path.read_text().replace("control_share: 0.1", "control_share: 2"))
    assert main(["campaign", "validate", str(folder)]) == 1
    output = capsys.readouterr().out
    line = next(
        n for n, text in enumerate(path.read_text().splitlines(), 1) if "control_share" in text
    )
    assert f"card_email.yaml:{line}: control_share must be in [0, 1), got 2" in output
    assert main(["campaign", "validate", str(tmp_path / "missing")]) == 2
