"""The paper's figures from a benchmark run, as PNG files (matplotlib, no display needed)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..replay import display_name

if TYPE_CHECKING:
    from .run import BenchmarkResult

CAL_METHODS = ("er", "mir", "der", "sd", "sds2")


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def speedup_vs_accuracy(summary: list, path: Path) -> Path:
    """Speedup against mean test accuracy, one panel per budget (the paper's Figures 2-7).

    Error bars are the 95% t-intervals over seeds (none for a single seed).
    """
    plt = _pyplot()
    budgets = sorted({row["budget"] for row in summary})
    figure, axes = plt.subplots(1, len(budgets), figsize=(3.2 * len(budgets), 3.4), squeeze=False)
    for axis, budget in zip(axes[0], budgets, strict=True):
        for row in (r for r in summary if r["budget"] == budget):
            axis.errorbar(
                row["time_speedup"],
                100 * row["accuracy_mean"],
                yerr=100 * (row.get("accuracy_ci95") or 0.0),
                fmt="o",
                capsize=3,
                label=display_name(row["method"]),
            )
        axis.set_title(f"{budget:.0%} labelled")
        axis.set_xlabel("speedup over AL (training time)")
        axis.grid(alpha=0.3)
    axes[0][0].set_ylabel("test accuracy (%)")
    axes[0][-1].legend(fontsize=7, loc="best")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def speedup_vs_budget(summary: list, path: Path) -> Path:
    """Speedup over AL against the labelled budget, one line per method: training time and samples.

    Two panels, ``time×`` and ``samples×``; a line that climbs means the gap
    to standard AL grows with the budget. The dotted line is AL itself (1x).

    Parameters
    ----------
    summary : list of dict
        :func:`~skcal.bench.report.summarize`'s rows.
    path : Path
        The PNG to write.

    Returns
    -------
    Path
        ``path``.
    """
    plt = _pyplot()
    methods = list(dict.fromkeys(row["method"] for row in summary))
    figure, axes = plt.subplots(1, 2, figsize=(10, 3.8), squeeze=False)
    panels = (("time_speedup", "speedup over AL (training time)"), ("samples_speedup", "speedup over AL (samples)"))
    for axis, (key, label) in zip(axes[0], panels, strict=True):
        for method in methods:
            rows = sorted((r for r in summary if r["method"] == method), key=lambda r: r["budget"])
            axis.plot(
                [100 * r["budget"] for r in rows],
                [r[key] for r in rows],
                marker="o",
                linestyle=":" if method == "retrain" else "-",
                label=display_name(method),
            )
        axis.set_xlabel("labelled fraction of the pool (%)")
        axis.set_ylabel(label)
        axis.grid(alpha=0.3)
    axes[0][-1].legend(fontsize=7, loc="best")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def forgetting(result: BenchmarkResult, path: Path) -> Path:
    """Accuracy on each round's labelled points after every round (the paper's Figure 1).

    Fine-tuning next to the CAL method with the best final accuracy, first seed
    (the first method when neither was run).
    """
    plt = _pyplot()
    final = {r["method"]: r["accuracy"] for r in result.rounds if r["seed"] == 0}
    cal = [m for m in result.methods if m in CAL_METHODS]
    shown = [m for m in ("finetune",) if m in result.methods]
    if cal:
        shown.append(max(cal, key=lambda m: final[m]))
    if not shown:  # only AL baselines were run: show the first
        shown = result.methods[:1]
    figure, axes = plt.subplots(1, len(shown), figsize=(5 * len(shown), 3.6), squeeze=False, sharey=True)
    for axis, method in zip(axes[0], shown, strict=True):
        records = [r for r in result.rounds if r["seed"] == 0 and r["method"] == method]
        accuracies = [r["round_accuracies"] for r in records]
        for task in range(len(accuracies)):
            rounds = np.arange(task, len(accuracies))
            axis.plot(rounds, [100 * accuracies[r][task] for r in rounds], marker=".", label=f"task {task}")
        axis.set_title(display_name(method))
        axis.set_xlabel("AL round")
        axis.grid(alpha=0.3)
    axes[0][0].set_ylabel("accuracy on the task's points (%)")
    axes[0][-1].legend(fontsize=6, ncol=2)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def entropy_correlation(result: BenchmarkResult, path: Path) -> Path:
    """Correlation of the final models' entropy scores on the test set (the paper's Figure 8)."""
    plt = _pyplot()
    methods = list(result.final_entropy)
    matrix = np.atleast_2d(np.corrcoef(np.stack([result.final_entropy[m] for m in methods])))
    figure, axis = plt.subplots(figsize=(1.0 + 0.8 * len(methods), 0.6 + 0.8 * len(methods)))
    image = axis.imshow(matrix, vmin=-1, vmax=1, cmap="RdBu_r")
    names = [display_name(m) for m in methods]
    axis.set_xticks(range(len(methods)), names, rotation=45, ha="right")
    axis.set_yticks(range(len(methods)), names)
    for i in range(len(methods)):
        for j in range(len(methods)):
            axis.text(j, i, f"{matrix[i, j]:.2f}", ha="center", va="center", fontsize=7)
    figure.colorbar(image, ax=axis, fraction=0.046)
    axis.set_title("entropy-score correlation (test set)")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def write_all(result: BenchmarkResult, summary: list, out: Path) -> dict:
    """Write the four figures under ``out``; return their paths by name."""
    return {
        "speedup_vs_accuracy": speedup_vs_accuracy(summary, out / "speedup_vs_accuracy.png"),
        "speedup_vs_budget": speedup_vs_budget(summary, out / "speedup_vs_budget.png"),
        "forgetting": forgetting(result, out / "forgetting.png"),
        "entropy_correlation": entropy_correlation(result, out / "entropy_correlation.png"),
    }
