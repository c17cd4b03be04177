"""The paper's figures from a benchmark run, as PNG files (matplotlib, no display needed).

Each figure has a builder that returns the matplotlib ``Figure``
(:func:`speedup_vs_accuracy_figure`, :func:`speedup_vs_budget_figure`,
:func:`forgetting_figure`, :func:`entropy_correlation_figure`) and a
function of the old name that writes it to a PNG file. Titles name the
dataset and the number of seeds; a figure with several panels has one
legend for all of them, beside the panels. Every method keeps its colour,
marker and line style across figures, and markers are hollow and of
decreasing size in the order the methods are drawn, so lines and points
that coincide (CAL methods often backpropagate exactly as many samples)
stay visible one inside the other.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .methods import METHODS, method_label

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from .run import BenchmarkResult

CAL_METHODS = ("er", "mir", "der", "sd", "sds2")
#: Markers and line styles given to the methods in turn, one each for every method of
#: :data:`~skcal.bench.methods.METHODS` (standard AL, ``retrain``, has its own: a dotted black line).
MARKERS = ("s", "^", "D", "v", "P", "X", "<", ">", "h", "*", "p", "d")
LINESTYLES = (
    "-",
    "--",
    "-.",
    (0, (5, 1, 1, 1, 1, 1)),  # dash, dot, dot
    (0, (8, 3)),  # long dashes
    (0, (1, 2, 1, 2, 5, 2)),  # dot, dot, dash
    (0, (4, 1, 1, 1)),  # dense dash-dot
    (0, (6, 2, 2, 2)),  # dash, short dash
)
DPI = 120


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def drawing_order(methods: Sequence[str]) -> list[str]:
    """Return ``methods`` in the order figures draw them: :data:`~skcal.bench.methods.METHODS`'s, others after.

    Parameters
    ----------
    methods : sequence of str

    Returns
    -------
    list of str
    """
    known = [method for method in METHODS if method in methods]
    return known + [method for method in dict.fromkeys(methods) if method not in METHODS]


def method_styles(methods: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Return the line and marker keywords of each method, for ``plot`` and ``errorbar``.

    Methods other than ``retrain`` (standard AL: thin, black, dotted,
    circles) take the colour cycle's colours, :data:`MARKERS` and
    :data:`LINESTYLES` in :func:`drawing_order`, so a method looks the same
    in every figure of every run, each with a thinner line and a smaller
    hollow marker than the one before: where methods coincide, every line
    shows along the one drawn before it and every marker inside it.

    Parameters
    ----------
    methods : sequence of str

    Returns
    -------
    dict
        Method to keywords (``color``, ``marker``, ``linestyle``,
        ``linewidth``, ``markersize``, ``markerfacecolor``,
        ``markeredgewidth``).
    """
    plt = _pyplot()
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    order = [method for method in METHODS if method != "retrain"]
    order += [method for method in dict.fromkeys(methods) if method not in METHODS]
    styles = {}
    for method in drawing_order(methods):
        if method == "retrain":
            style = {"color": "black", "marker": "o", "linestyle": ":", "linewidth": 1.5, "markersize": 9.0}
        else:
            rank = order.index(method)
            style = {
                "color": colors[rank % len(colors)],
                "marker": MARKERS[rank % len(MARKERS)],
                "linestyle": LINESTYLES[rank % len(LINESTYLES)],
                "linewidth": max(0.8, 3.0 - 0.3 * rank),
                "markersize": max(4.0, 12.0 - 1.1 * rank),
            }
        styles[method] = {**style, "markerfacecolor": "none", "markeredgewidth": 1.4}
    return styles


def _seeds(n_seeds: int) -> str:
    return f"{n_seeds} seed" + ("" if n_seeds == 1 else "s")


def _title(dataset: str, what: str) -> str:
    return f"{dataset}: {what}" if dataset else what


def _shared_legend(figure: Figure, axes: Sequence[Any], title: str | None = None) -> None:
    """One legend for every panel, to the right of them (entries in the order first drawn, without repeats)."""
    entries = {}
    for axis in axes:
        for handle, label in zip(*axis.get_legend_handles_labels(), strict=True):
            entries.setdefault(label, handle)
    figure.legend(list(entries.values()), list(entries), loc="outside right upper", title=title, fontsize=8)


def _name_coinciding_lines(axis: Any, series: dict[str, tuple[list, list]]) -> list[str]:
    """Write, beside the end of lines that coincide along their whole length, which methods they are.

    Returns the notes written, e.g. ``["CAL-ER = CAL-DER = CAL-SD"]``.
    """
    groups: dict[tuple, list[str]] = {}
    for method, (x, y) in series.items():
        key = (tuple(np.round(x, 9)), tuple(np.round(y, 9)))
        groups.setdefault(key, []).append(method)
    notes = []
    for methods in groups.values():
        if len(methods) < 2:
            continue
        x, y = series[methods[0]]
        note = " = ".join(method_label(method) for method in methods)
        axis.annotate(
            note,
            (x[-1], y[-1]),
            xytext=(0, -14),
            textcoords="offset points",
            ha="right",
            va="top",
            fontsize=7,
            bbox={"boxstyle": "round,pad=0.2", "facecolor": "white", "edgecolor": "0.6", "alpha": 0.9},
        )
        notes.append(note)
    return notes


def speedup_vs_accuracy_figure(summary: list, dataset: str = "") -> Figure:
    """Build the figure of speedup against mean test accuracy, one panel per budget (the paper's Figures 2-7).

    Error bars are the 95% t-intervals over seeds (none for a single seed).

    Parameters
    ----------
    summary : list of dict
        :func:`~skcal.bench.report.summarize`'s rows.
    dataset : str, default=""
        The dataset's name, for the title.

    Returns
    -------
    matplotlib.figure.Figure
    """
    plt = _pyplot()
    budgets = sorted({row["budget"] for row in summary})
    methods = drawing_order([row["method"] for row in summary])
    styles = method_styles(methods)
    n_seeds = min(row["n_seeds"] for row in summary)
    figure, axes = plt.subplots(
        1, len(budgets), figsize=(3.2 * len(budgets) + 1.6, 3.8), squeeze=False, layout="constrained"
    )
    for axis, budget in zip(axes[0], budgets, strict=True):
        for row in sorted((r for r in summary if r["budget"] == budget), key=lambda r: methods.index(r["method"])):
            style = {
                key: value for key, value in styles[row["method"]].items() if key not in ("linestyle", "linewidth")
            }
            axis.errorbar(
                row["time_speedup"],
                100 * row["accuracy_mean"],
                yerr=100 * row["accuracy_ci95"] if row.get("accuracy_ci95") else None,  # no bar for one seed
                linestyle="none",
                capsize=3,
                label=method_label(row["method"]),
                **style,
            )
        axis.set_title(f"{budget:.0%} labelled", fontsize=10)
        axis.set_xlabel("speedup over AL (training time)")
        axis.grid(alpha=0.3)
    axes[0][0].set_ylabel("test accuracy (%)")
    intervals = ", 95% intervals" if n_seeds > 1 else ""
    figure.suptitle(_title(dataset, f"test accuracy against speedup, mean of {_seeds(n_seeds)}{intervals}"))
    _shared_legend(figure, axes[0])
    return figure


def speedup_vs_budget_figure(summary: list, dataset: str = "") -> Figure:
    """Build the figure of speedup over AL against the labelled budget: training time and samples.

    Two panels, ``time×`` and ``samples×``, one line per method; a line that
    climbs means the gap to standard AL grows with the budget. The dotted
    black line is AL itself (1x). Methods whose lines coincide (CAL methods
    often backpropagate exactly as many samples) are named together at the
    end of their line, e.g. ``CAL-ER = CAL-SD``.

    Parameters
    ----------
    summary : list of dict
        :func:`~skcal.bench.report.summarize`'s rows.
    dataset : str, default=""
        The dataset's name, for the title.

    Returns
    -------
    matplotlib.figure.Figure
    """
    plt = _pyplot()
    methods = drawing_order([row["method"] for row in summary])
    styles = method_styles(methods)
    n_seeds = min(row["n_seeds"] for row in summary)
    figure, axes = plt.subplots(1, 2, figsize=(11, 4.0), squeeze=False, layout="constrained")
    panels = (("time_speedup", "speedup over AL (training time)"), ("samples_speedup", "speedup over AL (samples)"))
    for axis, (key, label) in zip(axes[0], panels, strict=True):
        series = {}
        for method in methods:
            rows = sorted((r for r in summary if r["method"] == method), key=lambda r: r["budget"])
            series[method] = ([100 * r["budget"] for r in rows], [r[key] for r in rows])
            axis.plot(*series[method], label=method_label(method), **styles[method])
        _name_coinciding_lines(axis, series)
        axis.set_xlabel("labelled fraction of the pool (%)")
        axis.set_ylabel(label)
        axis.set_title(label.removeprefix("speedup over AL ").strip("()"), fontsize=10)
        axis.grid(alpha=0.3)
    figure.suptitle(_title(dataset, f"speedup over standard AL by budget, mean of {_seeds(n_seeds)}"))
    _shared_legend(figure, axes[0])
    return figure


def forgetting_figure(result: BenchmarkResult) -> Figure:
    """Build the figure of accuracy on each round's labelled points after every round (the paper's Figure 1).

    Fine-tuning next to the CAL method with the best final accuracy, first
    seed (the first method when neither was run).

    Parameters
    ----------
    result : BenchmarkResult

    Returns
    -------
    matplotlib.figure.Figure
    """
    plt = _pyplot()
    final = {r["method"]: r["accuracy"] for r in result.rounds if r["seed"] == 0}
    cal = [m for m in result.methods if m in CAL_METHODS]
    shown = [m for m in ("finetune",) if m in result.methods]
    if cal:
        shown.append(max(cal, key=lambda m: final[m]))
    if not shown:  # only AL baselines were run: show the first
        shown = result.methods[:1]
    figure, axes = plt.subplots(
        1, len(shown), figsize=(5 * len(shown) + 1.2, 4.0), squeeze=False, sharey=True, layout="constrained"
    )
    for axis, method in zip(axes[0], shown, strict=True):
        records = [r for r in result.rounds if r["seed"] == 0 and r["method"] == method]
        accuracies = [r["round_accuracies"] for r in records]
        for task in range(len(accuracies)):
            rounds = np.arange(task, len(accuracies))
            axis.plot(
                rounds,
                [100 * accuracies[r][task] for r in rounds],
                marker=MARKERS[task % len(MARKERS)],
                markerfacecolor="none",
                linestyle=LINESTYLES[task % len(LINESTYLES)],
                label=f"round {task}",
            )
        axis.set_title(method_label(method), fontsize=10)
        axis.set_xlabel("AL round")
        axis.grid(alpha=0.3)
    axes[0][0].set_ylabel("accuracy on the round's points (%)")
    figure.suptitle(_title(result.data.name, f"accuracy on each round's labelled points, seed 0 of {result.seeds}"))
    _shared_legend(figure, axes[0], title="points of")
    return figure


def entropy_correlation_figure(result: BenchmarkResult) -> Figure:
    """Build the figure of the correlation of the final models' entropy scores on the test set (the paper's Figure 8).

    Parameters
    ----------
    result : BenchmarkResult

    Returns
    -------
    matplotlib.figure.Figure
    """
    plt = _pyplot()
    methods = list(result.final_entropy)
    matrix = np.atleast_2d(np.corrcoef(np.stack([result.final_entropy[m] for m in methods])))
    size = 0.8 * len(methods)
    figure, axis = plt.subplots(figsize=(3.2 + size, 1.8 + size), layout="constrained")
    image = axis.imshow(matrix, vmin=-1, vmax=1, cmap="RdBu_r")
    names = [method_label(m) for m in methods]
    axis.set_xticks(range(len(methods)), names, rotation=45, ha="right")
    axis.set_yticks(range(len(methods)), names)
    for i in range(len(methods)):
        for j in range(len(methods)):
            shade = "white" if abs(matrix[i, j]) > 0.6 else "black"  # readable on the dark ends of the colour map
            axis.text(j, i, f"{matrix[i, j]:.2f}", ha="center", va="center", fontsize=7, color=shade)
    figure.colorbar(image, ax=axis, fraction=0.046)
    figure.suptitle(
        _title(
            result.data.name, f"entropy-score correlation of the final models\n(test set, seed 0 of {result.seeds})"
        ),
        fontsize=10,
    )
    return figure


def _save(figure: Figure, path: Path) -> Path:
    figure.savefig(path, dpi=DPI)
    _pyplot().close(figure)
    return path


def speedup_vs_accuracy(summary: list, path: Path, dataset: str = "") -> Path:
    """Write :func:`speedup_vs_accuracy_figure` to the PNG file ``path``; return ``path``."""
    return _save(speedup_vs_accuracy_figure(summary, dataset), path)


def speedup_vs_budget(summary: list, path: Path, dataset: str = "") -> Path:
    """Write :func:`speedup_vs_budget_figure` to the PNG file ``path``; return ``path``."""
    return _save(speedup_vs_budget_figure(summary, dataset), path)


def forgetting(result: BenchmarkResult, path: Path) -> Path:
    """Write :func:`forgetting_figure` to the PNG file ``path``; return ``path``."""
    return _save(forgetting_figure(result), path)


def entropy_correlation(result: BenchmarkResult, path: Path) -> Path:
    """Write :func:`entropy_correlation_figure` to the PNG file ``path``; return ``path``."""
    return _save(entropy_correlation_figure(result), path)


def write_all(result: BenchmarkResult, summary: list, out: Path) -> dict:
    """Write the four figures under ``out``; return their paths by name."""
    dataset = result.data.name
    return {
        "speedup_vs_accuracy": speedup_vs_accuracy(summary, out / "speedup_vs_accuracy.png", dataset),
        "speedup_vs_budget": speedup_vs_budget(summary, out / "speedup_vs_budget.png", dataset),
        "forgetting": forgetting(result, out / "forgetting.png"),
        "entropy_correlation": entropy_correlation(result, out / "entropy_correlation.png"),
    }
