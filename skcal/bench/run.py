"""Run the benchmark of one dataset: every method's campaign per seed, stored as each finishes.

:func:`run_benchmark` checks every input first, loads the campaigns an
earlier run stored (:class:`~skcal.bench.store.CampaignStore`), trains the
others here or on a Dask cluster (:mod:`skcal.bench.runners`) and returns a
:class:`BenchmarkResult` for :mod:`skcal.bench.report`.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..exceptions import BenchmarkInputError
from .arguments import POSITIVE_INTEGER, QUERY_STRATEGIES, check_device, check_input, check_strategy
from .campaign import Campaign, campaign_data
from .data import BenchmarkData
from .plan import BenchmarkPlan, plan_benchmark
from .runners import campaign_threads, open_runner
from .store import CampaignStore, campaign_config

if TYPE_CHECKING:
    from .progress import BenchmarkProgress


@dataclass
class BenchmarkResult:
    """Everything a benchmark run measured, or loaded from the campaigns an earlier run stored.

    Attributes
    ----------
    data : BenchmarkData
        The dataset, its network and training settings (:func:`load_benchmark_data`).
    methods : list of str
    budgets : list of float
    rounds : list of dict
        One record per seed, method and round (the simulator's, plus
        ``dataset``, ``seed`` and ``method``).
    budget_rounds : dict
        The round reporting each budget: the one whose labelled count is
        nearest ``budget * pool size``.
    final_entropy : dict
        Per method, the entropy of the final model's predictions on the
        first seed's test set (the paper's Figure 8).
    plan : BenchmarkPlan or None
        Pool, test set and round sizes.
    seeds : int
        Campaigns per method.
    campaigns_run, campaigns_loaded : list of tuple
        ``(method, seed)`` of the campaigns trained by this run, and of those
        an earlier run had finished and stored, loaded instead.
    """

    data: BenchmarkData
    methods: list
    budgets: list
    rounds: list = field(default_factory=list)
    budget_rounds: dict = field(default_factory=dict)
    final_entropy: dict = field(default_factory=dict)
    plan: BenchmarkPlan | None = None
    seeds: int = 0
    campaigns_run: list = field(default_factory=list)
    campaigns_loaded: list = field(default_factory=list)


#: The MLflow experiment of ``skcal bench --mlflow``'s runs.
MLFLOW_EXPERIMENT = "skcal bench"


def check_mlflow(tracking_uri: str) -> None:
    """Check that MLflow is installed and answers at ``tracking_uri`` (:func:`skcal.tracking.check_tracking_uri`).

    Raises
    ------
    BenchmarkInputError
        ``parameter="mlflow"``, with the reason.
    """
    from ..tracking import check_tracking_uri

    try:
        check_tracking_uri(tracking_uri)
    except ValueError as error:
        raise BenchmarkInputError("mlflow", str(error)) from error


def log_bench_campaign(campaign: dict, config: dict, tracking_uri: str) -> str:
    """Log one finished campaign as an MLflow run: its configuration once, its rounds' numbers per round.

    Parameters
    ----------
    campaign : dict
        :func:`~skcal.bench.campaign.run_campaign`'s result.
    config : dict
        The run's :func:`~skcal.bench.store.campaign_config`.
    tracking_uri : str

    Returns
    -------
    str
        The run's id, in the experiment :data:`MLFLOW_EXPERIMENT`, named
        ``<dataset> <method> seed <seed>`` and tagged with them. Each round's
        numbers (accuracy, labelled count, samples backpropagated, training
        and query seconds and their cumulative sums) are ``round/<name>`` at
        step = round (:func:`skcal.tracking.log_campaign`).
    """
    from ..tracking import log_campaign

    names = {key: campaign[key] for key in ("dataset", "method", "seed")}
    params = {**config, **names, "host": campaign.get("host"), "torch_threads": campaign.get("torch_threads")}
    return log_campaign(
        campaign["records"],
        params,
        tracking_uri=tracking_uri,
        experiment_name=MLFLOW_EXPERIMENT,
        run_name=f"{names['dataset']} {names['method']} seed {names['seed']}",
        tags=names,
    )


def run_benchmark(
    data: BenchmarkData,
    methods: Sequence[str],
    budgets: Sequence[float],
    seeds: int = 3,
    initial: float = 0.05,
    query: float = 0.05,
    test_size: int | float | None = None,
    device: str = "cpu",
    progress: BenchmarkProgress | None = None,
    pool_size: int | None = None,
    out: str | Path | None = None,
    resume: bool = True,
    strategy: str = "entropy",
    scheduler: Any = None,
    threads: int | None = None,
    mlflow: str | None = None,
) -> BenchmarkResult:
    """Run the AL campaign for every seed and method, storing each as it finishes, reusing stored ones.

    Parameters
    ----------
    data : BenchmarkData
        The dataset, its network and training settings (:func:`load_benchmark_data`).
    methods : sequence of str
        Replay aliases; must include ``"retrain"``.
    budgets : sequence of float
        Labelled fractions of the pool to report at; the campaign runs to the largest.
    seeds : int, default=3
        Seeds ``0 .. seeds - 1``.
    initial, query : float, default=0.05
        Seed-set size and labels per round, as fractions of the pool.
    test_size : int or float, optional
        Test-set size (:func:`~skcal.bench.plan.campaign_split`); by default the dataset's.
    device : str, default="cpu"
        Where the networks train.
    progress : BenchmarkProgress, optional
        Progress bars; None shows none.
    pool_size : int, optional
        Subsample the pool to this many points (stratified, per seed).
    out : str or Path, optional
        The dataset's result folder: each finished campaign is written to
        ``out/campaigns/<method>-seed<k>.json`` (:class:`CampaignStore`).
        None stores nothing.
    resume : bool, default=True
        Load the campaigns stored under ``out`` instead of training them
        again (after checking their configuration); False trains and
        overwrites them.
    strategy : {"entropy", "margin", "bald", "batchbald"}, default="entropy"
        The query strategy (:data:`QUERY_STRATEGIES`); the paper's is
        entropy. BALD and BatchBALD need a network with dropout: MLP-based
        datasets get ``module__dropout=0.2`` for them.
    scheduler : str or distributed.Client, optional
        Run each campaign still to train as a task on this Dask cluster
        (:class:`~skcal.bench.runners.DaskCampaignRunner`; an address is
        connected to, and disconnected after, only if there is one); None
        trains them here, one after another. The accuracies are the same
        either way, on the same torch build, CPU kind and ``threads``.
    threads : int, optional
        Torch CPU threads per campaign; by default this process's, or 1 on
        a cluster (:func:`~skcal.bench.runners.campaign_threads`). Here, it is
        set for the whole process.
    mlflow : str, optional
        An MLflow tracking URI: each campaign trained (not those loaded) is
        logged there as it finishes, as a run of the experiment
        ``skcal bench`` (:func:`log_bench_campaign`). Needs ``skcal[tracking]``.

    Returns
    -------
    BenchmarkResult
        ``campaigns_run`` and ``campaigns_loaded`` say which were trained.

    Raises
    ------
    BenchmarkInputError
        Before any training: bad methods, budgets, sizes, data
        (:func:`plan_benchmark`), device (:func:`check_device`), ``seeds``,
        ``threads``, scheduler (:func:`~skcal.bench.runners.check_scheduler`),
        ``mlflow`` (:func:`check_mlflow`), or stored campaigns of another
        configuration (``parameter="out"``).
    skcal.exceptions.CampaignFailedError
        On a cluster, after the other campaigns finished and were stored,
        if some campaigns raised an exception or were lost too often.
    """
    budgets = sorted(budgets)
    check_input("seeds", seeds, [POSITIVE_INTEGER])
    check_input("threads", threads, [POSITIVE_INTEGER, None])
    check_device(device)
    if mlflow is not None:
        check_mlflow(mlflow)
    data = check_strategy(data, strategy)
    plan = plan_benchmark(data, methods, budgets, initial, query, test_size, pool_size)
    threads = campaign_threads(threads, on_cluster=scheduler is not None)
    config = campaign_config(data, plan, device, strategy, threads)
    store = CampaignStore(Path(out) / "campaigns", config) if out is not None else None
    finished = store.finished(methods, seeds) if store is not None and resume else {}
    result = BenchmarkResult(data, list(methods), budgets, budget_rounds=plan.budget_rounds, plan=plan, seeds=seeds)
    pending = [(method, seed) for seed in range(seeds) for method in methods if (method, seed) not in finished]
    if pending:
        campaigns = [
            Campaign(
                data.name,
                method,
                seed,
                data.estimator_params,
                data.classes,
                QUERY_STRATEGIES[strategy],
                plan.initial_count,
                plan.query_count,
                plan.n_rounds,
                device,
                keep_entropy=seed == 0,
            )
            for method, seed in pending
        ]
        with open_runner(scheduler, threads) as runner:
            if progress is not None:
                progress.expect(len(pending) * (plan.n_rounds + 1))
            seeds_to_run = sorted({seed for _, seed in pending})
            inputs = campaign_data(data, plan, seeds_to_run, progress=bool(progress and progress.bars))
            with closing(runner.run(campaigns, inputs, progress)) as trained:
                for campaign in trained:
                    if store is not None:
                        store.save(campaign)
                    if mlflow is not None:
                        log_bench_campaign(campaign, config, mlflow)
                    finished[(campaign["method"], campaign["seed"])] = campaign
    for seed in range(seeds):
        for method in methods:
            campaign = finished[(method, seed)]
            (result.campaigns_run if (method, seed) in pending else result.campaigns_loaded).append((method, seed))
            for record in campaign["records"]:
                result.rounds.append({"dataset": data.name, "seed": seed, "method": method, **record})
            if seed == 0 and campaign.get("final_entropy") is not None:
                result.final_entropy[method] = np.asarray(campaign["final_entropy"], dtype=float)
    return result
