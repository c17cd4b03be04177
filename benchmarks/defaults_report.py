"""Tables of the defaults study's held-out phase from its stored campaigns, whatever has finished.

``benchmarks/defaults.py --phase heldout`` writes its table as it goes; this
script reads the campaigns stored under ``OUT/heldout`` (including those of an
interrupted run) and writes ``OUT/heldout.md``: per problem and setting, the
seeds finished, final accuracy, the paired difference to AL with its 95%
interval, AL's samples and training time over the setting's, and the
labelled fraction and samples at which the default first reaches AL's final
accuracy (mean over seeds).

Run::

    python benchmarks/defaults_report.py --out docs/results/defaults
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from defaults import paired

SETTINGS = {"default": ("er", "CAL default (ER, auto)"), "ALwWS": ("warmstart", "AL w/ WS"),
            "ALwWS-SP": ("warmstart", "AL w/ WS + SP")}  # fmt: skip
PROBLEMS = ["fashion-mnist", "sentiment", "wordnet", "wide20", "hard6", "clean10"]


def load(folder: Path, method: str) -> dict[int, list]:
    """Return each stored seed's records of ``method`` in ``folder``."""
    found = {}
    for path in sorted(folder.glob(f"{method}-seed*.json")):
        campaign = json.loads(path.read_text())
        found[campaign["seed"]] = campaign["records"]
    return found


def reach(al: dict, other: dict, seeds: list) -> str:
    """Where the mean accuracy over seeds first reaches AL's final mean, and AL's samples over the setting's there."""
    target = np.mean([al[s][-1]["accuracy"] for s in seeds])
    for index in range(len(other[seeds[0]])):
        if np.mean([other[s][index]["accuracy"] for s in seeds]) >= target:
            fraction = other[seeds[0]][index]["labelled_fraction"]
            al_samples = np.mean([al[s][-1]["cumulative_samples_backpropagated"] for s in seeds])
            samples = np.mean([other[s][index]["cumulative_samples_backpropagated"] for s in seeds])
            return f"{fraction:.0%} ({al_samples / samples:.1f}x)"
    return "not reached"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="docs/results/defaults")
    parser.add_argument("--threads", type=int, default=1, help="unused: the report trains nothing")
    args = parser.parse_args()
    root = Path(args.out) / "heldout"
    lines = [
        "# Defaults study, held-out phase",
        "",
        "Written by `python benchmarks/defaults_report.py --out docs/results/defaults` from the campaigns stored under "
        "`heldout/` (see README.md for the command that trains them; a row \"not run yet\", or with fewer than "
        "3 seeds, had not finished, and rerunning that command resumes it). Final budget: 50% of the pool for the "
        "bundled datasets, 40% for the synthetic problems. Per setting: seeds finished; final accuracy (mean); paired "
        "difference to AL in points ± 95% half-interval; AL's samples backpropagated and training seconds over the "
        "setting's; where the mean accuracy first reaches AL's final mean accuracy (labelled fraction, and AL's "
        "samples to its final budget over the setting's to there).",
        "",
        "| problem | AL | setting | seeds | accuracy | vs AL (pts) | samples× | time× | reaches AL's final |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for problem in PROBLEMS:
        base = root / problem
        if not base.exists():
            continue
        al = load(base / "default" / "campaigns", "retrain")
        for folder, (method, label) in SETTINGS.items():
            other = load(base / folder / "campaigns", method)
            seeds = sorted(set(al) & set(other))
            if not seeds:
                lines.append(f"| {problem} | | {label} | 0 | not run yet | | | | |")
                continue
            al_accuracy = np.array([al[s][-1]["accuracy"] for s in seeds])
            accuracy = np.array([other[s][-1]["accuracy"] for s in seeds])
            difference = 100 * (accuracy - al_accuracy)
            samples = np.mean([al[s][-1]["cumulative_samples_backpropagated"] for s in seeds]) / np.mean(
                [other[s][-1]["cumulative_samples_backpropagated"] for s in seeds]
            )
            seconds = np.mean([al[s][-1]["cumulative_train_seconds"] for s in seeds]) / np.mean(
                [other[s][-1]["cumulative_train_seconds"] for s in seeds]
            )
            lines.append(
                f"| {problem} | {100 * al_accuracy.mean():.1f} | {label} | {len(seeds)} | {100 * accuracy.mean():.1f} "
                f"| {difference.mean():+.1f} ± {paired(difference)[1]:.1f} | {samples:.1f}x | {seconds:.1f}x "
                f"| {reach(al, other, seeds)} |"
            )
    (Path(args.out) / "heldout.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
