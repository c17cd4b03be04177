"""What ``skcal bench`` prints: bars on a terminal, plain lines in a log file."""

import io
import re
import subprocess
import sys

import pytest

from skcal.bench.cli import DEFAULT_METHODS
from skcal.bench.progress import BenchmarkProgress, format_duration, is_terminal
from skcal.replay import display_name


class Terminal(io.StringIO):
    """A stream that says it is a terminal."""

    def isatty(self):
        return True


def follow_two_campaigns(progress):
    """Drive ``progress`` as the local runner does: two campaigns of three rounds, a line after each."""
    progress.log("digits: pool 1347, test set 450")
    for seed in range(2):
        with progress.campaign(f"digits CAL-ER seed {seed}", 3) as advance:
            for _ in range(3):
                advance()
        progress.log(f"digits CAL-ER seed {seed}: accuracy 90.0%")
    progress.write("the table", file=progress.stream)
    progress.close()


def test_a_log_gets_one_plain_line_per_campaign():
    log = io.StringIO()
    progress = BenchmarkProgress(total_rounds=6, stream=log)
    assert not progress.bars
    follow_two_campaigns(progress)
    lines = log.getvalue().splitlines()
    assert "\r" not in log.getvalue() and "\x1b" not in log.getvalue()
    assert lines[0] == "digits: pool 1347, test set 450" and lines[-1] == "the table"
    assert re.fullmatch(
        r"digits CAL-ER seed 0: accuracy 90.0% \[3/6 rounds, 0:\d\d so far, about 0:\d\d left\]", lines[1]
    )
    assert re.fullmatch(r"digits CAL-ER seed 1: accuracy 90.0% \[6/6 rounds, 0:\d\d so far\]", lines[2])
    assert len(lines) == 4


def test_a_terminal_gets_bars():
    terminal = Terminal()
    progress = BenchmarkProgress(total_rounds=6, stream=terminal)
    assert progress.bars
    follow_two_campaigns(progress)
    assert "\r" in terminal.getvalue() and "all campaigns" in terminal.getvalue()
    assert "digits CAL-ER seed 1: accuracy 90.0%" in terminal.getvalue()


def test_bars_can_be_asked_for_or_refused_and_quiet_prints_nothing_but_results():
    assert BenchmarkProgress(stream=io.StringIO(), bars=True).bars
    assert not BenchmarkProgress(stream=Terminal(), bars=False).bars
    quiet = io.StringIO()
    progress = BenchmarkProgress(stream=quiet, enabled=False, bars=True)
    assert not progress.bars
    follow_two_campaigns(progress)
    assert quiet.getvalue() == "the table\n"


def test_terminal_detection_and_durations(tmp_path):
    assert is_terminal(Terminal()) and not is_terminal(io.StringIO()) and not is_terminal(object())
    with open(tmp_path / "log", "w") as file:
        assert not is_terminal(file)
    closed = io.StringIO()
    closed.close()
    assert not is_terminal(closed)  # isatty() raises ValueError
    assert [format_duration(s) for s in (0, 59.6, 61, 3599, 3600, 7384)] == [
        "0:00",
        "1:00",
        "1:01",
        "59:59",
        "1:00:00",
        "2:03:04",
    ]


@pytest.mark.slow
def test_bench_quick_into_a_log_file_is_plain_lines(tmp_path):
    log_path = tmp_path / "log"
    with open(log_path, "w") as log:
        command = [sys.executable, "-m", "skcal", "bench", "--quick", "--dataset", "digits", "--threads", "1"]
        result = subprocess.run([*command, "--out", str(tmp_path / "out")], stdout=log, stderr=subprocess.STDOUT)
    text = log_path.read_text()
    assert result.returncode == 0, text
    assert "\r" not in text and "\x1b" not in text
    lines = text.splitlines()
    for method in DEFAULT_METHODS.split(","):
        campaign = [line for line in lines if line.startswith(f"digits {display_name(method)} seed 0: accuracy ")]
        assert len(campaign) == 1, (method, text)
        assert re.search(r"\[\d+/\d+ rounds, \d+:\d\d so far", campaign[0])
    headers = [line for line in lines if line.startswith("scikit-learn digits (1797 8x8 images") and ": pool " in line]
    assert len(headers) == 2  # the dataset's line in the log, the table's heading
    assert "digits: 8 campaign(s) run, 0 loaded" in lines  # the dataset's closing line
    assert sum(line.startswith("| Method") or line.startswith("Method") for line in lines) >= 1
