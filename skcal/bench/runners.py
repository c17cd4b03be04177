"""Where ``skcal bench`` trains its campaigns: in this process, one after another, or as tasks on a Dask cluster.

A campaign is one method's simulated AL run for one seed of one dataset
(:class:`~skcal.bench.campaign.Campaign`). Its result depends only on the
campaign and its data (:mod:`skcal.bench.campaign`), so it does not matter
which process trains it or what that process trained before. On the same torch build, CPU kind and number of
torch threads, a campaign trained on a cluster has exactly the accuracies of
the same campaign trained here; only the timings differ.

Runners (:class:`CampaignRunner`) train a list of campaigns and yield each
one's result as it finishes, for :func:`~skcal.bench.run_benchmark` to store
at once:

* :class:`LocalCampaignRunner` trains them here, one after another, with a
  progress bar per campaign over its rounds.
* :class:`DaskCampaignRunner` submits one task per campaign to a
  ``dask.distributed`` cluster. The data goes to the cluster once
  (:meth:`distributed.Client.scatter`, to every worker, so losing a worker
  does not lose it); each task sets the torch threads, warms torch up once
  per worker process, trains, and returns the campaign with the per-round
  timings measured in the task. Results are collected as they complete
  (:func:`distributed.as_completed`), which also drives the progress bar.
  A campaign whose worker dies is run again: by the scheduler itself up to
  its ``distributed.scheduler.allowed-failures`` (3 by default), and beyond
  that, or when its data was lost, resubmitted by the runner (``resubmits``
  times). Dask's own ``retries=`` is not used: it re-runs only tasks that
  raised, and an exception raised by a campaign (a bug, a device missing
  on the worker) happens again on every run; it is reported instead, once
  the other campaigns are done (:class:`CampaignFailedError`).

:func:`check_scheduler` connects to a scheduler's address, or fails at once
with the reason; :func:`open_runner` gives the runner for ``scheduler=``.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from numbers import Integral
from typing import TYPE_CHECKING, Any, Protocol

import torch

from ..exceptions import BenchmarkInputError, CampaignFailedError
from ..utils.params import Interval, validate_params
from .arguments import POSITIVE_INTEGER
from .campaign import Campaign, CampaignData, campaign_line, run_campaign, warm_up

if TYPE_CHECKING:
    from .progress import BenchmarkProgress


@validate_params({"threads": [POSITIVE_INTEGER, None], "on_cluster": ["boolean"]})
def campaign_threads(threads: int | None, on_cluster: bool) -> int:
    """Return the torch CPU threads each campaign trains with.

    Parameters
    ----------
    threads : int, optional
        The number asked for (``skcal bench --threads``).
    on_cluster : bool
        Whether the campaigns run as tasks on a Dask cluster.

    Returns
    -------
    int
        ``threads``; if None, 1 on a cluster (a worker runs one campaign per
        worker thread, and Dask's nannies start workers with
        ``OMP_NUM_THREADS=1``), else this process's torch threads.

    Raises
    ------
    InvalidParameterError
        A ``ValueError``, if ``threads`` is not a positive integer (torch
        would refuse it only inside the campaigns, on every worker).
    """
    if threads is not None:
        return int(threads)
    return 1 if on_cluster else torch.get_num_threads()


class CampaignRunner(Protocol):
    """Trains campaigns somewhere and yields each one's result as it finishes.

    Attributes
    ----------
    threads : int
        Torch CPU threads each campaign trains with (recorded with the stored
        campaigns: timings depend on it).
    """

    threads: int

    def run(
        self, campaigns: Sequence[Campaign], data: CampaignData, progress: BenchmarkProgress | None = None
    ) -> Iterator[dict]:
        """Train ``campaigns`` on ``data``; yield each result (:func:`run_campaign`'s) once it is done, in any order.

        Each finished campaign advances ``progress`` by its rounds and logs a
        line. Closing the iterator early stops the campaigns still running.
        """
        ...


class LocalCampaignRunner:
    """Train campaigns in this process, one after another, with a progress bar per campaign.

    Parameters
    ----------
    threads : int, optional
        Torch CPU threads (``torch.set_num_threads``, for the whole process);
        None keeps this process's.
    """

    def __init__(self, threads: int | None = None):
        self.threads = campaign_threads(threads, on_cluster=False)

    def run(
        self, campaigns: Sequence[Campaign], data: CampaignData, progress: BenchmarkProgress | None = None
    ) -> Iterator[dict]:
        """Train ``campaigns`` in order; yield each result as it finishes (see :class:`CampaignRunner`)."""
        if torch.get_num_threads() != self.threads:
            torch.set_num_threads(self.threads)
        warmed, seed, split = False, None, None
        for campaign in campaigns:
            if campaign.seed != seed:
                seed, split = campaign.seed, data.split(campaign.seed)
            if not warmed:
                warm_up(campaign, split)
                warmed = True
            rounds = campaign.n_rounds + 1
            bar = progress.campaign(campaign.description, rounds) if progress is not None else nullcontext(None)
            with bar as advance:
                result = run_campaign(campaign, split, advance)
            if progress is not None:
                progress.log(campaign_line(campaign, result))
            yield result


#: ``(device, dataset)`` pairs this process has warmed torch up for, in cluster tasks.
_WARMED_UP: set = set()


def run_campaign_task(campaign: Campaign, threads: int, data: CampaignData) -> dict:
    """Train one campaign in a Dask worker: the task :class:`DaskCampaignRunner` submits.

    Parameters
    ----------
    campaign : Campaign
    threads : int
        Torch CPU threads (``torch.set_num_threads`` in the worker process).
    data : CampaignData
        The scattered data of the run.

    Returns
    -------
    dict
        :func:`run_campaign`'s result, timed in the task, with ``worker``,
        the address of the worker that trained it.
    """
    from distributed import get_worker

    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    split = data.split(campaign.seed)
    if (campaign.device, campaign.dataset) not in _WARMED_UP:
        warm_up(campaign, split)
        _WARMED_UP.add((campaign.device, campaign.dataset))
    result = run_campaign(campaign, split)
    result["worker"] = get_worker().address
    return result


def _malloc_trim_threshold() -> str | None:
    """Return this process's ``MALLOC_TRIM_THRESHOLD_`` (run on the workers by :meth:`DaskCampaignRunner.describe`)."""
    return os.environ.get("MALLOC_TRIM_THRESHOLD_")


def _describe(error: Any) -> str:
    return f"{type(error).__name__}: {error}" if isinstance(error, BaseException) else str(error)


class DaskCampaignRunner:
    """Train campaigns as tasks on a ``dask.distributed`` cluster, one task per campaign.

    The data is scattered once to every worker; each task sets the torch
    threads, warms torch up once per worker process, trains the campaign and
    returns it with its per-round timings, measured in the task. Results are
    yielded as tasks complete. A campaign whose worker dies is rescheduled by
    the scheduler (up to ``distributed.scheduler.allowed-failures`` deaths,
    3 by default); past that (``KilledWorker``), or if its data was lost
    with every worker holding it, the runner scatters the data again if
    needed and resubmits the campaign, at most ``resubmits`` times. An
    exception raised by the campaign itself is not retried: the other
    campaigns run on, then :class:`CampaignFailedError` names the failed ones.

    Parameters
    ----------
    client : distributed.Client
        Connected to the cluster's scheduler; not closed by the runner.
    threads : int, optional
        Torch CPU threads per task; by default 1 (:func:`campaign_threads`).
    resubmits : int, default=2
        How many times one campaign is resubmitted after losing its worker
        more often than the scheduler allows, or its data.
    """

    @validate_params({"resubmits": [Interval(Integral, 0, None, closed="left")]})
    def __init__(self, client: Any, threads: int | None = None, resubmits: int = 2):
        self.client = client
        self.threads = campaign_threads(threads, on_cluster=True)
        self.resubmits = resubmits

    def describe(self) -> str:
        """One line on the cluster: the scheduler's address, its workers and their threads, and timing caveats."""
        workers = self.client.scheduler_info(n_workers=-1).get("workers", {})
        threads = sum(worker.get("nthreads", 0) for worker in workers.values())
        line = (
            f"Dask scheduler at {self.client.scheduler.address}: {len(workers)} worker(s), {threads} thread(s), "
            f"{self.threads} torch thread(s) per campaign"
        )
        if not workers:
            return line + "; the campaigns wait for workers to join"
        trimmed = sorted({value for value in self.client.run(_malloc_trim_threshold).values() if value is not None})
        if trimmed:
            line += (
                f"; the workers run with MALLOC_TRIM_THRESHOLD_={','.join(trimmed)} (Dask's nanny sets it), which "
                "can make torch's CPU training twice as slow as in a plain process: start them without it for "
                "timings (docs/scaling.md)"
            )
        return line

    def run(
        self, campaigns: Sequence[Campaign], data: CampaignData, progress: BenchmarkProgress | None = None
    ) -> Iterator[dict]:
        """Submit ``campaigns``; yield each result as its task completes (see :class:`CampaignRunner`).

        Raises
        ------
        CampaignFailedError
            After the other campaigns finished, if some raised an exception
            or were lost more often than allowed.
        """
        from distributed import KilledWorker, as_completed

        run_id = uuid.uuid4().hex[:8]
        scattered = self.client.scatter(data, broadcast=True, hash=False)
        running: dict = {}  # future -> (campaign, attempt)

        def submit(campaign: Campaign, attempt: int) -> Any:
            key = f"skcal-{campaign.dataset}-{campaign.method}-seed{campaign.seed}-{run_id}-{attempt}"
            future = self.client.submit(run_campaign_task, campaign, self.threads, scattered, key=key, pure=False)
            running[future] = (campaign, attempt)
            return future

        if progress is not None:
            progress.log(f"submitting {len(campaigns)} campaign(s) to the {self.describe()}")
        completed = as_completed([submit(campaign, 0) for campaign in campaigns], loop=self.client.loop)
        failures = []
        try:
            for future in completed:
                campaign, attempt = running.pop(future)
                if future.status == "finished":
                    result = future.result()
                    future.release()
                    if progress is not None:
                        progress.rounds_done(campaign.n_rounds + 1)
                        progress.log(campaign_line(campaign, result))
                    yield result
                    continue
                error = future.exception() if future.status == "error" else None
                lost = error is None or isinstance(error, KilledWorker)
                if not lost or attempt >= self.resubmits:
                    failures.append((campaign, error if error is not None else f"its task was {future.status}"))
                    continue
                if scattered.status != "finished":
                    scattered = self.client.scatter(data, broadcast=True, hash=False)
                reason = _describe(error) if error is not None else f"its task was {future.status}"
                if progress is not None:
                    progress.log(f"{campaign.description}: lost on the cluster ({reason}); submitting it again")
                completed.add(submit(campaign, attempt + 1))
        finally:
            self.client.cancel([*running, scattered])
        if failures:
            raise CampaignFailedError(failures) from next(
                (error for _, error in failures if isinstance(error, BaseException)), None
            )


def check_scheduler(scheduler: Any) -> Any:
    """Connect to the Dask scheduler at an address, or check a client, before any training.

    Parameters
    ----------
    scheduler : str or distributed.Client
        An address such as ``tcp://host:8786`` (``host:port`` means TCP),
        or a connected client. The connection waits at most Dask's
        ``distributed.comm.timeouts.connect`` (30 s unless configured).

    Returns
    -------
    distributed.Client
        A new client for an address (the caller closes it), or ``scheduler``.

    Raises
    ------
    BenchmarkInputError
        With ``parameter="scheduler"``: dask.distributed is not installed,
        the address is malformed, its transport is unusable here (``ucx``
        without ucx-py), nothing answers there, or the client is
        not connected.
    """
    try:
        import dask
        import distributed
        from dask.utils import parse_timedelta
        from distributed.comm.addressing import parse_address, parse_host_port
        from distributed.comm.registry import backends
    except ImportError:
        raise BenchmarkInputError(
            "scheduler",
            "running campaigns on a Dask cluster needs dask.distributed, which is not installed; "
            "install it with: pip install 'skcal[dask]'",
        ) from None
    if isinstance(scheduler, distributed.Client):
        if scheduler.status != "running":
            raise BenchmarkInputError("scheduler", f"the Dask client is not connected (status {scheduler.status!r}).")
        return scheduler
    if not isinstance(scheduler, str) or not scheduler.strip():
        raise BenchmarkInputError(
            "scheduler",
            f"expected a scheduler address such as tcp://host:8786 or a distributed.Client, got {scheduler!r}",
        )
    address = scheduler.strip()
    timeout = parse_timedelta(dask.config.get("distributed.comm.timeouts.connect"), default="seconds")
    try:
        scheme, location = parse_address(address)
        if scheme not in backends:
            raise ValueError(f"unknown scheme {scheme!r}; known: {', '.join(sorted(backends))}")
        host, port = parse_host_port(location) if scheme in ("tcp", "tls") else (None, None)
    except ValueError as error:
        raise BenchmarkInputError(
            "scheduler", f"{address!r} is not a Dask scheduler address ({error}); give one such as tcp://host:8786"
        ) from None
    try:  # a transport registered without its library (ucx without ucx-py) fails here, not in Client()
        backends[scheme].get_connector()
    except Exception as error:
        raise BenchmarkInputError(
            "scheduler", f"the {scheme!r} transport of {address!r} cannot be used here ({_describe(error)})"
        ) from None
    if host is not None:  # fail at once, with the reason, where nothing listens
        try:
            socket.create_connection((host, port), timeout=timeout).close()
        except OSError as error:
            raise BenchmarkInputError(
                "scheduler",
                f"cannot reach a Dask scheduler at {address}: {error.strerror or error}. "
                "Is `dask scheduler` running there, and the port open to this machine?",
            ) from None
    try:
        return distributed.Client(address, timeout=timeout, set_as_default=False)
    except (OSError, TimeoutError, ValueError) as error:
        raise BenchmarkInputError(
            "scheduler", f"cannot connect to a Dask scheduler at {address} within {timeout:g} s: {error}"
        ) from None


@contextmanager
def open_runner(scheduler: Any = None, threads: int | None = None) -> Iterator[CampaignRunner]:
    """Open the runner of ``scheduler``: this process's for None, else a Dask cluster's.

    Parameters
    ----------
    scheduler : str or distributed.Client, optional
        Checked by :func:`check_scheduler`; a client it opens for an
        address is closed on leaving the context.
    threads : int, optional
        Torch CPU threads per campaign (:func:`campaign_threads`).

    Yields
    ------
    CampaignRunner
    """
    if scheduler is None:
        yield LocalCampaignRunner(threads)
        return
    client = check_scheduler(scheduler)
    try:
        yield DaskCampaignRunner(client, threads)
    finally:
        if client is not scheduler:
            client.close()
