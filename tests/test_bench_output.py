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


# -- the figures, checked through matplotlib's objects


def summary_rows(n_seeds=3):
    """summarize()'s rows for four methods and two budgets; CAL-ER and CAL-SD backpropagate the same samples."""
    samples = {"retrain": (1.0, 1.0), "finetune": (2.0, 3.0), "er": (1.5, 1.8), "sd": (1.5, 1.8)}
    times = {"retrain": (1.0, 1.0), "finetune": (2.2, 3.1), "er": (1.4, 2.0), "sd": (1.2, 1.7)}
    return [
        {
            "method": method,
            "budget": budget,
            "time_speedup": times[method][i],
            "samples_speedup": samples[method][i],
            "accuracy_mean": 0.8 + 0.05 * i,
            "accuracy_ci95": 0.02 if n_seeds > 1 else None,
            "n_seeds": n_seeds,
        }
        for method in samples
        for i, budget in enumerate((0.1, 0.2))
    ]


def a_result(n_seeds=3):
    import numpy as np

    from skcal.bench import BenchmarkData
    from skcal.bench.run import BenchmarkResult

    methods = ["retrain", "finetune", "er", "sd"]
    rounds = [
        {"seed": seed, "method": method, "round": r, "accuracy": 0.9, "round_accuracies": [0.9] * (r + 1)}
        for seed in range(n_seeds)
        for method in methods
        for r in range(3)
    ]
    rng = np.random.default_rng(0)
    data = BenchmarkData("digits", np.zeros((4, 2)), np.arange(4), {}, "scikit-learn digits")
    entropy = {method: rng.random(20) for method in methods}
    return BenchmarkResult(data, methods, [0.1, 0.2], rounds=rounds, final_entropy=entropy, seeds=n_seeds)


def legend_labels(legend):
    return [text.get_text() for text in legend.get_texts()]


@pytest.mark.parametrize("n_seeds", [1, 3])
def test_speedup_figures_share_one_legend_and_name_the_dataset_and_the_seeds(n_seeds):
    from skcal.bench.plots import speedup_vs_accuracy_figure, speedup_vs_budget_figure

    names = ["AL", "Fine-tune", "CAL-ER", "CAL-SD"]
    seeds = "1 seed" if n_seeds == 1 else f"{n_seeds} seeds"
    for build in (speedup_vs_accuracy_figure, speedup_vs_budget_figure):
        figure = build(summary_rows(n_seeds), dataset="digits")
        assert len(figure.axes) == 2
        assert [legend_labels(legend) for legend in figure.legends] == [names]  # one legend, the figure's
        assert all(axis.get_legend() is None for axis in figure.axes)  # none on a panel
        title = figure.get_suptitle()
        assert title.startswith("digits: ") and f"mean of {seeds}" in title, title
        if build is speedup_vs_accuracy_figure:  # the error bars, over more than one seed
            assert ("95% intervals" in title) == (n_seeds > 1)


def test_every_method_has_its_own_marker_and_coinciding_lines_are_named():
    from skcal.bench.plots import speedup_vs_budget_figure

    figure = speedup_vs_budget_figure(summary_rows(), dataset="digits")
    time_panel, samples_panel = figure.axes
    lines = {line.get_label(): line for line in samples_panel.get_lines()}
    assert list(lines) == ["AL", "Fine-tune", "CAL-ER", "CAL-SD"]
    assert len({line.get_marker() for line in lines.values()}) == 4
    er, sd = lines["CAL-ER"], lines["CAL-SD"]
    assert list(er.get_ydata()) == list(sd.get_ydata())  # the two lines coincide...
    assert er.get_linewidth() > sd.get_linewidth() and er.get_markersize() > sd.get_markersize()  # ...the later inside
    assert er.get_markerfacecolor() == "none"  # hollow: the marker drawn after shows inside
    assert [text.get_text() for text in samples_panel.texts] == ["CAL-ER = CAL-SD"]
    assert len(time_panel.texts) == 0  # their training times differ


def test_a_method_looks_the_same_whatever_else_was_run():
    from skcal.bench.methods import METHODS
    from skcal.bench.plots import method_styles

    styles = method_styles(METHODS)
    for key in ("marker", "linestyle", "color"):  # every method its own
        assert len({str(style[key]) for style in styles.values()}) == len(METHODS), key

    alone = method_styles(["retrain", "sd"])["sd"]
    among_all = method_styles(["retrain", "warmstart", "finetune", "er", "mir", "der", "sd", "sds2"])["sd"]
    assert alone == among_all
    assert method_styles(["sd", "retrain"])["retrain"]["linestyle"] == ":"


def test_the_forgetting_and_entropy_figures_name_the_dataset_and_the_seeds():
    from skcal.bench.plots import entropy_correlation_figure, forgetting_figure

    figure = forgetting_figure(a_result(n_seeds=3))
    assert figure.get_suptitle().startswith("digits: ") and "seed 0 of 3" in figure.get_suptitle()
    assert [axis.get_title() for axis in figure.axes] == ["Fine-tune", "CAL-ER"]  # CAL-ER: the best final accuracy
    assert len(figure.legends) == 1 and all(axis.get_legend() is None for axis in figure.axes)
    assert legend_labels(figure.legends[0]) == ["round 0", "round 1", "round 2"]
    figure = entropy_correlation_figure(a_result(n_seeds=2))
    assert figure.get_suptitle().startswith("digits: ") and "seed 0 of 2" in figure.get_suptitle()


def test_write_all_writes_the_four_pngs(tmp_path):
    import matplotlib.pyplot as plt

    from skcal.bench.plots import write_all

    open_before = plt.get_fignums()
    paths = write_all(a_result(), summary_rows(), tmp_path)
    assert sorted(paths) == ["entropy_correlation", "forgetting", "speedup_vs_accuracy", "speedup_vs_budget"]
    assert all(path.read_bytes().startswith(b"\x89PNG") for path in paths.values())
    assert plt.get_fignums() == open_before  # every figure closed
