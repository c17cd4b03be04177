"""Pool-scoring throughput and the cost of the diversity strategies, against baselines in the same run.

1. ``skcal.query.entropy_sampling`` over a pool of 1M rows (100 float32
   features) with an MLP 100-256-256-10, against the bare forward pass of the
   same module over the same tensor in the same batches (``torch.no_grad``),
   once discarding its outputs and once keeping the logits. Printed: rows per
   second of each and the ratio to the bare pass (target >= 0.9).
2. ``coreset_sampling`` and ``badge_sampling`` of 100 points from 100k rows:
   wall time, and peak memory above the process's baseline, each measured in a
   fresh process; against the embeddings' own size and an n x n matrix.

Run: ``python benchmarks/query_throughput.py`` (about two minutes on 2 CPU cores).
"""

import argparse
import multiprocessing
import os
import statistics
import threading
import time

import numpy as np
import torch

from skcal import ContinualActiveClassifier
from skcal import query as Q
from skcal.models import MLP


def fitted_net(batch_size, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((256, 100)).astype(np.float32)
    net = ContinualActiveClassifier(
        MLP,
        module__n_features=100,
        module__n_classes=10,
        module__hidden=(256, 256),
        batch_size=batch_size,
        max_epochs=1,
        verbose=0,
        random_state=seed,
    )
    return net.fit(X, rng.integers(0, 10, 256))


def throughput(args):
    pool = torch.randn(args.pool, 100, generator=torch.Generator().manual_seed(0))
    net = fitted_net(args.batch_size)
    module = net.module_.eval()

    def bare():
        with torch.no_grad():
            for start in range(0, len(pool), args.batch_size):
                module(pool[start : start + args.batch_size])

    def bare_keeping_logits():
        with torch.no_grad():
            return torch.cat(
                [module(pool[start : start + args.batch_size]) for start in range(0, len(pool), args.batch_size)]
            )

    def skcal():
        Q.entropy_sampling(net, pool, 1000)

    bare()
    skcal()  # warm-up
    bare_times, keeping_times, skcal_times = [], [], []
    clock = time.process_time if args.cpu_time else time.perf_counter
    for _ in range(args.repeats):
        for run, times in ((bare, bare_times), (bare_keeping_logits, keeping_times), (skcal, skcal_times)):
            start = clock()
            run()
            times.append(clock() - start)
    bare_rate, skcal_rate = args.pool / statistics.median(bare_times), args.pool / statistics.median(skcal_times)
    paired = statistics.median(b / s for b, s in zip(bare_times, skcal_times, strict=True))
    print(
        f"entropy_sampling over {args.pool:,} rows, batch {args.batch_size}, {args.repeats} interleaved repeats, "
        f"{'process CPU' if args.cpu_time else 'wall-clock'} time:"
    )
    print(f"  bare forward (outputs discarded)  {bare_rate:12,.0f} rows/s")
    print(f"  bare forward keeping the logits   {args.pool / statistics.median(keeping_times):12,.0f} rows/s")
    print(f"  skcal entropy_sampling            {skcal_rate:12,.0f} rows/s")
    print(f"  throughput ratio {skcal_rate / bare_rate:.3f}, median paired ratio {paired:.3f}  (target >= 0.9)")


def _rss_mib():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _measure(name, rows, batch_size, queue):
    torch.set_num_threads(2)
    pool = torch.randn(rows, 100, generator=torch.Generator().manual_seed(1))
    net = fitted_net(batch_size)
    Q.entropy_sampling(net, pool[:1000], 1)  # warm-up outside the measurement
    baseline, peak, running = _rss_mib(), [0.0], [True]

    def sample():  # the resident set, every 2 ms, while the strategy runs
        while running[0]:
            peak[0] = max(peak[0], _rss_mib())
            time.sleep(0.002)

    sampler = threading.Thread(target=sample)
    sampler.start()
    strategy = {"coreset": Q.coreset_sampling, "badge": Q.badge_sampling}[name]
    start = time.perf_counter()
    strategy(net, pool, 100)
    seconds = time.perf_counter() - start
    running[0] = False
    sampler.join()
    queue.put((seconds, peak[0] - baseline))


def diversity_costs(args):
    rows = args.diversity_rows
    print(f"\n100 picks from {rows:,} rows (256-d embeddings, 10 classes), each in a fresh process:")
    embeddings_mib = rows * 256 * 4 / 2**20
    print(
        f"  for scale: the pool's embeddings take {embeddings_mib:,.0f} MiB, an n x n float32 matrix "
        f"{rows * rows * 4 / 2**30:,.0f} GiB"
    )
    context = multiprocessing.get_context("spawn")
    for name in ("coreset", "badge"):
        queue = context.Queue()
        process = context.Process(target=_measure, args=(name, rows, args.batch_size, queue))
        process.start()
        seconds, extra_mib = queue.get()
        process.join()
        print(f"  {name:<8} {seconds:6.2f} s, peak memory +{extra_mib:,.0f} MiB over the loaded pool")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pool", type=int, default=1_000_000)
    parser.add_argument("--batch-size", type=int, default=4096)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--diversity-rows", type=int, default=100_000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--cpu-time", action="store_true", help="time with process CPU time, which other tenants' load does not inflate"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} threads")
    throughput(args)
    diversity_costs(args)


if __name__ == "__main__":
    main()
