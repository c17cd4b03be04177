"""Soak: 200 CAL rounds on a 100k-point history; memory must stay bounded, round time flat.

Seeds a campaign with 100k labelled points, then runs 200 CAL-ER rounds of
``--new`` points each. Printed every 20 rounds: the resident set size (current
and peak), the history's size, and the median round time of the last 20
rounds. What a round does per new point does not depend on the history's size
(replay batches are gathers), so the time should stay flat and memory should
grow only by the appended rows (plus the history's capacity doubling).

Run: ``python benchmarks/soak.py`` (about a minute on 2 CPU cores). Not part of CI.
"""

import argparse
import os
import resource
import statistics
import time

import numpy as np
import torch

from skcal import ContinualActiveClassifier
from skcal.models import MLP


def rss_mib():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--history", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--new", type=int, default=200)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--every", type=int, default=20, help="report every this many rounds")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    n_total = args.history + args.rounds * args.new
    centres = rng.standard_normal((10, 100)) * 2
    y = rng.integers(0, 10, n_total)
    X = (centres[y] + rng.standard_normal((n_total, 100))).astype(np.float32)

    net = ContinualActiveClassifier(
        MLP,
        module__n_features=100,
        module__n_classes=10,
        module__hidden=(128,),
        replay="er",
        batch_size=64,
        replay_size=64,
        round_epochs=1,
        max_epochs=1,
        lr=0.05,
        verbose=0,
        random_state=0,
    )
    net.fit(X[: args.history], y[: args.history])
    start_rss = rss_mib()
    print(f"seeded with {args.history:,} points; RSS {start_rss:,.0f} MiB; {args.rounds} CAL-ER rounds of {args.new}")
    print(f"{'round':>6} {'history':>9} {'RSS MiB':>8} {'peak MiB':>9} {f'median round ms (last {args.every})':>26}")
    times, first_median = [], None
    for round_index in range(1, args.rounds + 1):
        start = args.history + (round_index - 1) * args.new
        began = time.perf_counter()
        net.partial_fit(X[start : start + args.new], y[start : start + args.new])
        times.append(time.perf_counter() - began)
        if round_index % args.every == 0:
            median = statistics.median(times[-args.every :]) * 1e3
            first_median = first_median or median
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            print(f"{round_index:>6} {len(net.labelled_history_):>9,} {rss_mib():>8,.0f} {peak:>9,.0f} {median:>26.1f}")
    grown = len(net.labelled_history_) - args.history
    print(
        f"\nRSS grew {rss_mib() - start_rss:,.0f} MiB while the history grew by {grown:,} points "
        f"({grown * 100 * 4 / 2**20:,.1f} MiB of features); last/first median round time "
        f"{statistics.median(times[-args.every :]) * 1e3 / first_median:.2f}x"
    )


if __name__ == "__main__":
    main()
