"""`cx simulate` and `cx strategy evaluate` are registered and refuse bad input clearly."""

from __future__ import annotations

from cx_pipelines.cli import build_parser, main


def test_simulate_and_evaluate_are_cx_commands():
    parser = build_parser()
    simulate = parser.parse_args(["simulate", "--cycles", "4", "--cycle-days", "14"])
    assert (simulate.cycles, simulate.cycle_days, simulate.start) == (4, 14, "2026-10-01")
    evaluate = parser.parse_args(
        ["strategy", "evaluate", "strategies/campaigns", "--bootstrap", "9"]
    )
    assert (evaluate.candidate, evaluate.bootstrap, evaluate.run_key) == (
        "strategies/campaigns",
        9,
        None,
    )
    # the engine's own strategy subcommands are still there
    assert parser.parse_args(["strategy", "validate", "x.yaml"]).strategy_command == "validate"


def test_simulate_refuses_zero_cycles(cx_home, capsys):
    assert main(["simulate", "--cycles", "0"]) == 1
    assert "--cycles must be at least 1, got 0" in capsys.readouterr().err


def test_simulate_refuses_a_challenger_share_out_of_range(cx_home, capsys):
    arguments = ["simulate", "--challenger", "same", "--challenger-share", "1.5"]
    assert main(arguments) == 1
    assert "challenger share must be in (0, 1), got 1.5" in capsys.readouterr().err


def test_simulate_states_the_experiment_design_it_is_given():
    arguments = ["simulate", "--challenger", "true_uplift", "--experiment-horizon", "4"]
    arguments += ["--experiment-control-share", "0.3", "--experiment-spending", "pocock"]
    parsed = build_parser().parse_args(arguments)
    assert parsed.experiment_horizon == 4
    assert (parsed.experiment_control_share, parsed.experiment_spending) == (0.3, "pocock")


def test_simulate_refuses_an_experiment_design_it_cannot_use(cx_home, capsys):
    assert main(["simulate", "--experiment-horizon", "4"]) == 1
    assert "design (--experiment-horizon) needs --challenger" in capsys.readouterr().err
    assert main(["simulate", "--challenger", "same", "--experiment-horizon", "0"]) == 1
    assert "experiment horizon must be a positive number of runs, got 0" in capsys.readouterr().err
    assert main(["simulate", "--challenger", "same", "--experiment-spending", "linear"]) == 1
    assert "spending must be one of" in capsys.readouterr().err


def test_evaluate_without_a_decision_log_says_what_to_do(cx_home, capsys, tmp_path):
    candidate = tmp_path / "campaigns"
    candidate.mkdir()
    assert main(["strategy", "evaluate", str(candidate)]) == 1
    assert "no decision log yet" in capsys.readouterr().err
