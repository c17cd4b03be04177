"""``skcal bench`` on a Dask cluster: a two-process ``LocalCluster``, the local run's results, lost workers."""

import importlib
import io
import json
import os
import signal
import socket
import sys

import cloudpickle
import pytest
import torch
from distributed import Client, LocalCluster
from skorch.callbacks import Callback

from skcal.bench import BenchmarkInputError, BenchmarkProgress, apply_epochs, load_benchmark_data, run_benchmark
from skcal.bench.runners import DaskCampaignRunner, LocalCampaignRunner, check_scheduler, open_runner
from skcal.cli import main

METHODS = ["retrain", "er"]
SEEDS = 2
SIZES = dict(pool_size=200, test_size=100, initial=0.1, query=0.1)
BUDGETS = [0.1, 0.2, 0.3]
EPOCHS = dict(round_epochs=3, max_epochs=15)
ARGUMENTS = [
    "--dataset", "digits", "--methods", ",".join(METHODS), "--seeds", str(SEEDS),
    "--pool-size", "200", "--test-size", "100", "--initial", "0.1", "--query", "0.1", "--budgets", "0.1,0.2,0.3",
    "--round-epochs", "3", "--max-epochs", "15", "--threads", "1", "--quiet",
]  # fmt: skip
TIMINGS = {"train_seconds", "cumulative_train_seconds", "query_seconds"}
OUTPUTS = ("rounds.csv", "rounds.json", "summary.json", "summary.csv", "table.txt", "table.md")


@pytest.fixture(scope="module")
def cluster():
    # the workers unpickle this module's KillWorkerOnce by value, whatever sys.path they start with
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    try:
        with (
            LocalCluster(n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None) as cluster,
            Client(cluster, set_as_default=False) as client,
        ):  # skcal must not need a default client
            # the workers import torch and skcal while the local reference run trains
            imports = [
                client.submit(importlib.import_module, "skcal.bench.runners", workers=[address], pure=False)
                for address in client.scheduler_info(n_workers=-1)["workers"]
            ]
            yield cluster, client
            del imports
    finally:
        cloudpickle.unregister_pickle_by_value(sys.modules[__name__])


@pytest.fixture(scope="module")
def local_run(tmp_path_factory):
    """The reference: the same benchmark trained in this process, one campaign after another."""
    out = tmp_path_factory.mktemp("local")
    assert main(["bench", *ARGUMENTS, "--out", str(out)]) == 0
    return out / "digits"


def deterministic(records):
    """Round records without the timings: everything a rerun anywhere must reproduce exactly."""
    return [{key: value for key, value in record.items() if key not in TIMINGS} for record in records]


def stored_campaigns(folder):
    """``(method, seed)`` to the stored campaign file's content."""
    return {
        (campaign["method"], campaign["seed"]): campaign
        for campaign in (json.loads(path.read_text()) for path in sorted((folder / "campaigns").glob("*.json")))
    }


def assert_same_campaigns(folder, reference):
    """Every campaign of ``folder`` has the reference's records and final entropies, bit for bit."""
    ran, expected = stored_campaigns(folder), stored_campaigns(reference)
    assert sorted(ran) == sorted(expected) == [(method, seed) for method in sorted(METHODS) for seed in range(SEEDS)]
    for key, campaign in ran.items():
        assert deterministic(campaign["records"]) == deterministic(expected[key]["records"]), key
        assert campaign["final_entropy"] == expected[key]["final_entropy"], key
        assert all(record["train_seconds"] > 0 for record in campaign["records"])  # timed in the task


def accuracy_cells(table_md, n_budgets):
    """The method name, accuracy and balanced-accuracy cells of the main table (not the speedups)."""
    main_table = table_md.split("\n\n")[0].splitlines()[2:]
    return [[cell.strip() for cell in line.strip("|").split("|")][: 1 + 2 * n_budgets] for line in main_table]


def workers(client, n=2):
    """Wait for ``n`` workers; return worker address to process id."""
    client.wait_for_workers(n, timeout=60)
    return client.run(os.getpid)


class KillWorkerOnce(Callback):
    """SIGKILL the process training, as the OOM killer would, in a round after the seed round; once per marker.

    The first campaign to get there kills its worker (the marker file, created
    atomically, makes sure only one does); the process ``spare_pid`` (the
    test's) is never killed.
    """

    def __init__(self, marker, spare_pid):
        self.marker = marker
        self.spare_pid = spare_pid

    def on_epoch_end(self, net, **kwargs):
        if os.getpid() == self.spare_pid or not net.rounds_:
            return
        try:
            os.close(os.open(self.marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return
        os.kill(os.getpid(), signal.SIGKILL)


def digits_with_a_worker_killer(marker):
    data = apply_epochs(load_benchmark_data("digits"), **EPOCHS)
    data.estimator_params["callbacks"] = [("kill_worker", KillWorkerOnce(str(marker), os.getpid()))]
    return data


def test_cli_on_a_cluster_writes_the_local_run_s_results_and_resumes(cluster, local_run, tmp_path):
    _, client = cluster
    addresses = workers(client)
    arguments = ["bench", *ARGUMENTS, "--out", str(tmp_path), "--scheduler", client.scheduler.address]
    assert main(arguments) == 0
    folder = tmp_path / "digits"
    for name in OUTPUTS:
        assert (folder / name).stat().st_size > 0, name
    figures = sorted(path.name for path in folder.glob("*.png"))
    assert figures == sorted(path.name for path in local_run.glob("*.png")) and len(figures) == 4
    assert_same_campaigns(folder, local_run)
    campaigns = stored_campaigns(folder)
    assert {campaign["worker"] for campaign in campaigns.values()} <= set(addresses)
    assert all(campaign["config"]["threads"] == 1 for campaign in campaigns.values())

    rounds = json.loads((folder / "rounds.json").read_text())
    assert deterministic(rounds) == deterministic(json.loads((local_run / "rounds.json").read_text()))
    summary, expected = (json.loads((path / "summary.json").read_text()) for path in (folder, local_run))
    for row, reference in zip(summary["table"], expected["table"], strict=True):
        for key in reference:
            if key.startswith(("accuracy", "balanced_accuracy", "samples", "target", "labelled")):
                assert row[key] == reference[key], key
    assert summary["campaigns_run"] == expected["campaigns_run"] and len(summary["campaigns_run"]) == 4
    table, reference_table = ((path / "table.md").read_text() for path in (folder, local_run))
    assert accuracy_cells(table, len(BUDGETS)) == accuracy_cells(reference_table, len(BUDGETS))
    assert len(accuracy_cells(table, len(BUDGETS))) == len(METHODS)

    # an interrupted cluster run resumes: only the campaign missing is submitted
    (folder / "campaigns" / "er-seed1.json").unlink()
    assert main(arguments) == 0
    assert json.loads((folder / "summary.json").read_text())["campaigns_run"] == ["er-seed1"]
    assert_same_campaigns(folder, local_run)


def test_a_worker_killed_mid_campaign_gets_its_campaign_run_again(cluster, local_run, tmp_path):
    _, client = cluster
    before = workers(client)
    marker = tmp_path / "killed"
    data = digits_with_a_worker_killer(marker)
    result = run_benchmark(data, METHODS, BUDGETS, seeds=SEEDS, **SIZES, out=tmp_path, scheduler=client, threads=1)
    assert marker.exists()  # a worker did die, in the middle of a campaign
    assert len(set(before.values()) - set(workers(client).values())) == 1  # and its nanny started another
    assert len(result.campaigns_run) == len(METHODS) * SEEDS
    assert_same_campaigns(tmp_path, local_run)


def test_a_campaign_lost_more_often_than_the_scheduler_allows_is_resubmitted(cluster, local_run, tmp_path):
    local_cluster, client = cluster
    workers(client)
    marker = tmp_path / "killed"
    data = digits_with_a_worker_killer(marker)
    log = io.StringIO()
    allowed = local_cluster.scheduler.allowed_failures
    local_cluster.scheduler.allowed_failures = 0  # the first death is a KilledWorker error, for skcal to handle
    try:
        run_benchmark(
            data,
            METHODS,
            BUDGETS,
            seeds=SEEDS,
            **SIZES,
            out=tmp_path,
            scheduler=client.scheduler.address,  # an address: run_benchmark connects, and disconnects after
            threads=1,
            progress=BenchmarkProgress(stream=log),
        )
    finally:
        local_cluster.scheduler.allowed_failures = allowed
    assert marker.exists()
    assert "lost on the cluster (KilledWorker" in log.getvalue() and "submitting it again" in log.getvalue()
    assert "submitting 4 campaign(s) to the Dask scheduler at tcp://" in log.getvalue()
    assert "the workers run with MALLOC_TRIM_THRESHOLD_=65536" in log.getvalue()  # Dask's default: a timing caveat
    assert_same_campaigns(tmp_path, local_run)


def test_threads_apply_inside_the_worker_task(cluster, tmp_path):
    _, client = cluster
    assert set(client.run(torch.get_num_threads).values()) == {1}  # Dask's nannies start workers with one
    data = apply_epochs(load_benchmark_data("digits"), **EPOCHS)
    result = run_benchmark(data, ["retrain"], [0.1], seeds=1, **SIZES, out=tmp_path, scheduler=client, threads=2)
    assert result.campaigns_run == [("retrain", 0)]
    campaign = stored_campaigns(tmp_path)[("retrain", 0)]
    assert campaign["torch_threads"] == 2 and campaign["config"]["threads"] == 2


def free_port():
    """A local TCP port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def run_bad(capsys, arguments, out):
    with pytest.raises(SystemExit) as exit_info:
        main(["bench", "--out", str(out), "--quiet", "--methods", "retrain,er", *arguments])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2, err
    assert "Traceback" not in err and "skcal bench: error: argument --scheduler: " in err, err
    assert not out.exists()  # nothing trained, nothing written
    return err


def test_a_bad_scheduler_is_a_clear_argument_error_before_any_work(capsys, tmp_path, monkeypatch):
    out = tmp_path / "out"
    port = free_port()
    err = run_bad(capsys, ["--scheduler", f"tcp://127.0.0.1:{port}"], out)
    assert f"cannot reach a Dask scheduler at tcp://127.0.0.1:{port}: Connection refused" in err
    err = run_bad(capsys, ["--scheduler", "http://localhost:8786"], out)
    assert "'http://localhost:8786' is not a Dask scheduler address (unknown scheme 'http'; known: " in err
    err = run_bad(capsys, ["--scheduler", "localhost"], out)
    assert "is not a Dask scheduler address (missing port number" in err
    err = run_bad(capsys, ["--scheduler", " "], out)
    assert "must not be empty" in err

    monkeypatch.setitem(sys.modules, "distributed", None)  # as if dask.distributed were not installed
    with pytest.raises(SystemExit) as exit_info:  # the extras are checked first, before the arguments' values
        main(["bench", "--out", str(out), "--quiet", "--methods", "retrain,er", "--scheduler", "tcp://127.0.0.1:8786"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "Traceback" not in err and not out.exists()
    assert "skcal bench needs distributed, not installed here; install it with: pip install 'skcal[dask]'" in err


def test_the_library_checks_the_scheduler_it_is_given(cluster):
    local_cluster, _ = cluster
    data = load_benchmark_data("digits")
    with pytest.raises(BenchmarkInputError, match="expected a scheduler address") as info:
        run_benchmark(data, METHODS, [0.1], seeds=1, scheduler=8786)
    assert info.value.parameter == "scheduler"
    with pytest.raises(BenchmarkInputError, match="threads must be a positive integer") as info:
        run_benchmark(data, METHODS, [0.1], seeds=1, threads=0)
    assert info.value.parameter == "threads"
    client = Client(local_cluster)
    assert check_scheduler(client) is client
    client.close()
    with pytest.raises(BenchmarkInputError, match="the Dask client is not connected"):
        check_scheduler(client)


@pytest.mark.parametrize("address", ["ucx://127.0.0.1:1", "ucx://127.0.0.1:8786"])
def test_a_scheduler_on_an_unusable_transport_is_a_clear_argument_error(address):
    # distributed registers the ucx transport without ucx-py; Client() then raised a bare TypeError
    # (and hung 60 s closing itself): the check must answer with the argument error instead
    with pytest.raises(BenchmarkInputError) as info:
        check_scheduler(address)
    assert info.value.parameter == "scheduler" and "ucx" in str(info.value)


@pytest.mark.parametrize("threads", [0, -1, 1.5, True])
def test_a_runner_refuses_threads_torch_would_refuse_inside_every_campaign(threads):
    # before: LocalCampaignRunner(0) failed mid-run, DaskCampaignRunner(0) failed every task on the cluster
    with pytest.raises(ValueError, match="threads must be a positive integer"):
        LocalCampaignRunner(threads)
    with pytest.raises(ValueError, match="threads must be a positive integer"):
        DaskCampaignRunner(client=None, threads=threads)
    with pytest.raises(ValueError, match="threads must be a positive integer"), open_runner(None, threads):
        pass
