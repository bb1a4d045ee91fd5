"""`cx` errors are one line on stderr (exit 2 for usage, 1 for failures), tracebacks only
with --debug; a closed pipe is quiet; progress bars only on a terminal. Real subprocesses."""

from __future__ import annotations

import os
import pty
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

CX = [sys.executable, "-m", "cx_pipelines.cli"]
UNREACHABLE = "postgresql+psycopg2://cx:hunter2@127.0.0.1:1/cx"


def cx(home: Path, *arguments: str, **environment: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "CX_HOME": str(home), "DAGSTER_HOME": str(home / "dagster")}
    env.pop("CX_SOURCE_URL", None)
    env.pop("MLFLOW_TRACKING_URI", None)
    env.update(environment)
    return subprocess.run(
        [*CX, *arguments], capture_output=True, text=True, env=env, timeout=300, check=False
    )


def assert_one_error_line(result: subprocess.CompletedProcess, code: int, *parts: str) -> str:
    assert result.returncode == code, result.stderr
    lines = [line for line in result.stderr.splitlines() if "error" in line.lower()]
    assert "Traceback" not in result.stderr
    assert len(lines) == 1, result.stderr
    for part in parts:
        assert part in lines[0], lines[0]
    return lines[0]


@pytest.mark.slow
def test_mistyped_asset_selection_is_a_usage_error(cx_home):
    result = cx(cx_home, "materialize", "customers,accounts")
    assert_one_error_line(result, 2, "'customers,accounts'", "key:customers or key:accounts")


def test_a_misspelt_asset_is_a_usage_error_with_suggestions(cx_home, capsys):
    from cx_pipelines.cli import main

    assert main(["materialize", "custmers"]) == 2
    error = capsys.readouterr().err.strip()
    assert "\n" not in error and "Traceback" not in error
    assert error.startswith("cx materialize: usage error: asset selection 'custmers'")
    assert "did you mean" in error and "customers" in error


def test_a_negative_customer_count_is_a_usage_error(cx_home):
    result = cx(cx_home, "generate", "--customers", "-5")
    assert_one_error_line(result, 2, "--customers", "at least 1")
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_an_unreachable_database_host_is_one_line_with_the_password_masked(cx_home):
    result = cx(cx_home, "generate", "--customers", "10", CX_SOURCE_URL=UNREACHABLE)
    line = assert_one_error_line(result, 1, "127.0.0.1", "cx:***@")
    assert "hunter2" not in result.stderr and "hunter2" not in line

    result = cx(cx_home, "materialize", "customers", CX_SOURCE_URL=UNREACHABLE)
    assert_one_error_line(result, 1, "step customers failed", "SourceUnavailableError")
    assert "hunter2" not in result.stderr


def test_debug_shows_the_traceback(cx_home):
    result = cx(cx_home, "--debug", "generate", "--customers", "10", CX_SOURCE_URL=UNREACHABLE)
    assert result.returncode == 1
    assert "Traceback" in result.stderr


@pytest.mark.slow
def test_a_failed_blocking_check_is_one_line_and_exit_1(cx_home):
    assert cx(cx_home, "generate", "--customers", "200").returncode == 0
    with sqlite3.connect(cx_home / "source.db") as connection:
        connection.execute("UPDATE customers SET region = 'mars' WHERE customer_id <= 50")

    result = cx(cx_home, "materialize", "customers", "accounts")

    assert "FAILED" in result.stdout
    assert_one_error_line(result, 1, "customers_quarantine_rate_is_acceptable")


def test_a_closed_pipe_prints_no_traceback(cx_home):
    reader = subprocess.Popen(
        f"{' '.join(CX)} strategy schema | head -n 1",
        shell=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "CX_HOME": str(cx_home)},
    )
    out, err = reader.communicate(timeout=120)
    assert out.strip() == "{"
    assert "BrokenPipe" not in err and "Traceback" not in err and "Exception" not in err


def test_progress_is_quiet_when_not_a_terminal(cx_home):
    result = cx(cx_home, "generate", "--customers", "1500")
    assert result.returncode == 0
    assert result.stderr == ""
    assert "1,500 customers" in result.stdout


def test_progress_bar_on_a_terminal(cx_home):
    env = {**os.environ, "CX_HOME": str(cx_home), "DAGSTER_HOME": str(cx_home / "dagster")}
    env.pop("CX_SOURCE_URL", None)
    pid, terminal = pty.fork()
    if pid == 0:  # the child: stdout and stderr are the terminal
        os.execve(sys.executable, [*CX, "generate", "--customers", "2500"], env)
    output = b""
    while True:
        try:
            chunk = os.read(terminal, 4096)
        except OSError:
            break
        if not chunk:
            break
        output += chunk
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    text = output.decode(errors="replace")
    assert "generating" in text and "customers" in text and "%" in text
