"""When each stopping criterion would have stopped a CAL-ER campaign, and what stopping there costs.

For every dataset and seed, one CAL-ER campaign runs to the full budget under
``skcal bench``'s protocol (same data, network, split, seed set and entropy
queries as ``skcal bench``'s CAL-ER campaigns: ``skcal.bench.load_benchmark_data``,
``campaign_split``, ``plan_benchmark``): a stratified 75/25 pool/test split, a random
seed set of ``--initial`` of the pool, then ``--query`` of the pool per round
up to ``--budget``. It is a hand-written modAL loop
(:class:`~skcal.modal.ContinualActiveLearner`), and after every round,
the seed round included, every criterion of :mod:`skcal.stopping` is updated
with the model, exactly as ``ActiveLearningSimulator(stop_when=...)`` does; the
campaign is not stopped, so each criterion's round can be compared with the
full budget. The stop set is the whole pool (labelled and unlabelled points,
fixed across rounds), which is what the simulator gives a criterion built
without one.

Reported per criterion: the round it first held at in each seed ("-": never,
the campaign's accuracy at the full budget is then used), the labelled
fraction there, the test accuracy there and at the full budget (mean ± std
over seeds), and the labels saved. As a consistency check, for seed 0 the
earliest criterion is rerun through ``ActiveLearningSimulator(stop_when=...)``,
which must stop at the same round with the same accuracy.

Run: ``python benchmarks/stopping.py --threads 2 --out docs/results/stopping.md``
(about two minutes on 2 CPU cores).
"""

from __future__ import annotations

import argparse
import platform
import shlex
import sys
import time

import numpy as np
import torch
from sklearn.base import clone
from sklearn.metrics import balanced_accuracy_score

from skcal import ActiveLearningSimulator, ContinualActiveClassifier
from skcal.bench import campaign_split, load_benchmark_data, plan_benchmark
from skcal.modal import ContinualActiveLearner
from skcal.query import entropy_sampling
from skcal.stopping import MaxRounds, StabilizingPredictions, UncertaintyBelow
from skcal.utils.data import select_rows


def criteria(stop_set):
    """Return the criteria compared, by label (thresholds fixed before any run)."""
    return {
        "kappa > 0.99 over 3 (Bloodgood & Vijay-Shanker)": StabilizingPredictions(stop_set, threshold=0.99, window=3),
        "kappa > 0.95 over 3": StabilizingPredictions(stop_set, threshold=0.95, window=3),
        "mean normalised entropy < 0.10": UncertaintyBelow(0.10, stop_set, measure="entropy"),
        "mean 1 - max p < 0.05": UncertaintyBelow(0.05, stop_set, measure="max"),
        "MaxRounds(4)": MaxRounds(4),
    }


def campaign(data, seed, args):
    """One CAL-ER campaign to the full budget; every criterion updated after every round."""
    plan = plan_benchmark(data, ["retrain", "er"], [args.budget], args.initial, args.query)
    n_rounds = plan.budget_rounds[args.budget]
    pool, test = campaign_split(data, seed)  # bench's stratified split of this seed
    X_test_source = data.X if getattr(data, "X_test", None) is None else data.X_test
    y_test_source = data.y if getattr(data, "y_test", None) is None else data.y_test
    X_pool, y_pool = select_rows(data.X, pool), np.asarray(data.y)[pool]
    X_test, y_test = select_rows(X_test_source, test), np.asarray(y_test_source)[test]
    params = dict(data.estimator_params)
    for name in ("max_epochs", "round_epochs"):
        if getattr(args, name) is not None:
            params[name] = getattr(args, name)
    classes = getattr(data, "classes", None)
    classes = np.unique(data.y) if classes is None else classes
    estimator = ContinualActiveClassifier(**params, replay="er", random_state=seed, classes=classes)
    watched = criteria(X_pool)
    for criterion in watched.values():
        criterion.reset()

    rng = np.random.RandomState(seed)  # the simulator's seed-set draw
    labelled = rng.choice(len(y_pool), plan.initial_count, replace=False)
    learner = ContinualActiveLearner(estimator, entropy_sampling)
    learner.fit(select_rows(X_pool, labelled), y_pool[labelled])
    rounds = []
    for r in range(n_rounds + 1):
        if r:
            unlabelled = np.setdiff1d(np.arange(len(y_pool)), labelled)
            chosen, _ = learner.query(select_rows(X_pool, unlabelled), n_instances=plan.query_count)
            chosen = unlabelled[np.asarray(chosen)]
            learner.teach(select_rows(X_pool, chosen), y_pool[chosen])
            labelled = np.concatenate([labelled, chosen])
        predicted = learner.predict(X_test)
        rounds.append(
            {
                "round": r,
                "n_labelled": len(labelled),
                "labelled_fraction": len(labelled) / len(y_pool),
                "accuracy": float(np.mean(predicted == y_test)),
                "balanced_accuracy": float(balanced_accuracy_score(y_test, predicted)),
            }
        )
        for criterion in watched.values():
            criterion.update(learner)
    stops = {name: criterion.stopped_at_ for name, criterion in watched.items()}
    setup = dict(estimator=estimator, plan=plan, n_rounds=n_rounds, X_pool=X_pool, y_pool=y_pool, test=(X_test, y_test))
    return rounds, stops, setup


def check_with_simulator(setup, name, stopped_at, rounds, seed):
    """Rerun the campaign through ActiveLearningSimulator(stop_when=...): same stop, same accuracy."""
    plan = setup["plan"]
    criterion = clone(criteria(setup["X_pool"])[name])
    simulator = ActiveLearningSimulator(
        clone(setup["estimator"]),
        entropy_sampling,
        initial_size=plan.initial_count,
        query_size=plan.query_count,
        n_rounds=setup["n_rounds"],
        random_state=seed,
        stop_when=criterion,
    ).fit(setup["X_pool"], setup["y_pool"], eval_set=setup["test"])
    same = simulator.stopped_at_ == stopped_at and simulator.records_[-1]["accuracy"] == rounds[stopped_at]["accuracy"]
    return same, simulator.stopped_at_


def percent(values):
    values = 100 * np.asarray(values)
    return f"{values.mean():.1f}" if len(values) < 2 else f"{values.mean():.1f} ± {values.std(ddof=1):.1f}"


def table(name, runs, names):
    """Markdown table: one row per criterion, over the seeds of one dataset."""
    full = [rounds[-1] for rounds, _ in runs]
    lines = [
        "| criterion | stop round per seed | labelled at stop | accuracy at stop | accuracy at full budget "
        "| bal. acc. at stop | bal. acc. at full budget | labels saved |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for criterion in names:
        at_stop, rounds_shown = [], []
        for rounds, stops in runs:
            stop = stops[criterion]
            rounds_shown.append("-" if stop is None else str(stop))
            at_stop.append(rounds[-1] if stop is None else rounds[stop])
        saved = np.mean([1 - s["n_labelled"] / f["n_labelled"] for s, f in zip(at_stop, full, strict=True)])
        lines.append(
            f"| {criterion} | {', '.join(rounds_shown)} "
            f"| {100 * np.mean([s['labelled_fraction'] for s in at_stop]):.0f}% "
            f"| {percent([s['accuracy'] for s in at_stop])} | {percent([f['accuracy'] for f in full])} "
            f"| {percent([s['balanced_accuracy'] for s in at_stop])} "
            f"| {percent([f['balanced_accuracy'] for f in full])} | {100 * saved:.0f}% |"
        )
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="digits,pbmc68k", help="comma-separated skcal bench dataset names")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--initial", type=float, default=0.05, help="seed-set fraction of the pool")
    parser.add_argument("--query", type=float, default=0.05, help="fraction of the pool labelled per round")
    parser.add_argument("--budget", type=float, default=0.5, help="full budget, fraction of the pool")
    parser.add_argument("--max-epochs", type=int, help="epoch cap of the seed round (default: the dataset's, as bench)")
    parser.add_argument("--round-epochs", type=int, help="epochs of a CAL round (default: the dataset's, as bench)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--out", default=None, help="write the markdown report here (default: print only)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    started = time.perf_counter()
    command = "python benchmarks/stopping.py " + " ".join(shlex.quote(arg) for arg in (argv or sys.argv[1:]))
    sections = []
    for dataset in args.datasets.split(","):
        data = load_benchmark_data(dataset)
        runs, checks = [], []
        for seed in range(args.seeds):
            rounds, stops, setup = campaign(data, seed, args)
            runs.append((rounds, stops))
            if seed == 0:
                fired = {name: stop for name, stop in stops.items() if stop is not None}
                if fired:
                    earliest = min(fired, key=fired.get)
                    same, simulated = check_with_simulator(setup, earliest, fired[earliest], rounds, seed)
                    checks.append(
                        f"Check: ActiveLearningSimulator(stop_when=<{earliest}>), seed 0, stopped at round {simulated} "
                        f"(hand loop: {fired[earliest]}), same accuracy: {same}"
                    )
                    if not same:
                        raise SystemExit(f"{dataset}: the simulator disagrees with the hand-written loop: {checks[-1]}")
            print(f"{dataset} seed {seed}: stops {stops}", flush=True)
        names = list(runs[0][1])
        rounds = runs[0][0]
        plan = (
            f"{len(rounds) - 1} query rounds, {rounds[0]['n_labelled']} seed labels, full budget "
            f"{rounds[-1]['n_labelled']} labels ({100 * rounds[-1]['labelled_fraction']:.0f}% of the pool)"
        )
        body = table(dataset, runs, names)
        sections.append(
            f"## {data.description}\n\n{plan}; seeds 0-{args.seeds - 1}.\n\n{body}\n\n" + "\n".join(checks) + "\n"
        )
        print(f"\n{dataset}: {plan}\n{body}\n" + "\n".join(checks), flush=True)
    elapsed = time.perf_counter() - started
    print(f"\naccuracy at stop vs full budget: done in {elapsed:.0f} s")
    if args.out:
        epochs = (
            "each dataset's `skcal bench` epochs: seed round until 99% training accuracy or the epoch cap, "
            "a fixed number of epochs per CAL round"
            if args.max_epochs is None and args.round_epochs is None
            else f"seed-round epoch cap {args.max_epochs or 'as bench'}, "
            f"CAL-round epochs {args.round_epochs or 'as bench'}"
        )
        report = [
            "# Stopping criteria: where they stop a CAL-ER campaign, and the accuracy there",
            "",
            f"Produced by `{command}` in {elapsed:.0f} s on {platform.machine()} "
            f"({torch.get_num_threads()} torch threads, torch {torch.__version__}), {time.strftime('%Y-%m-%d')}.",
            "",
            "One CAL-ER campaign per seed, run to the full budget under `skcal bench`'s protocol (stratified "
            "75/25 pool/test split, random seed set of 5% of the pool, entropy sampling of 5% per round, "
            f"{epochs}); after "
            "every round (the seed round is round 0) every criterion is updated with the model, as "
            "`ActiveLearningSimulator(stop_when=...)` does, but the campaign goes on. The stop set is the whole "
            'pool. "Stop round per seed" is the first round a criterion held at ("-": never; the full-budget '
            "figures are then used). Accuracy and balanced accuracy are on the test split, mean ± std over "
            'seeds; "labels saved" is the mean share of the full budget\'s labels not bought by stopping there. '
            "The thresholds were fixed before the run (the paper's 0.99 for kappa), not tuned on it.",
            "",
            *sections,
            "",
        ]
        with open(args.out, "w") as handle:
            handle.write("\n".join(report))
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
