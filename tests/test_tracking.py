"""Rounds reach experiment trackers: skcal.tracking against a real MLflow file store and real TensorBoard files."""

import functools
import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import MLP, make_net
from sklearn.model_selection import cross_validate
from skorch.callbacks import Callback, MlflowLogger, TensorBoard
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch.utils.tensorboard import SummaryWriter

from skcal.bench import load_benchmark_data, run_benchmark
from skcal.cli import main
from skcal.query import entropy_sampling
from skcal.simulation import ActiveLearningSimulator
from skcal.tracking import RoundLogger, describe, log_campaign, loggable_params, mlflow_client

N_ROUNDS = 5  # the seed round and four more
ROUND_METRICS = (
    "n_labelled",
    "n_new",
    "epochs",
    "samples_forwarded",
    "cumulative_samples_forwarded",
    "samples_backpropagated",
    "cumulative_samples_backpropagated",
    "train_seconds",
    "cumulative_train_seconds",
    "train_accuracy",
)


@pytest.fixture(autouse=True)
def no_file_store_opt_in(monkeypatch):
    """MLflow 3 refuses a file store without MLFLOW_ALLOW_FILE_STORE: skcal must set it for a folder URI itself."""
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)


def run_campaign(net, X, y, n_rounds=N_ROUNDS, seed_size=100, per_round=50):
    net.fit(X[:seed_size], y[:seed_size])
    for k in range(n_rounds - 1):
        start = seed_size + k * per_round
        net.partial_fit(X[start : start + per_round], y[start : start + per_round])
    return net


def mlflow_series(client, run_id, name):
    history = sorted(client.get_metric_history(run_id, name), key=lambda metric: metric.step)
    return [metric.step for metric in history], [metric.value for metric in history]


def tensorboard_series(log_dir, tag):
    events = EventAccumulator(str(log_dir))
    events.Reload()
    scalars = events.Scalars(tag)
    return [event.step for event in scalars], [event.value for event in scalars]


def params_texts(log_dir):
    events = EventAccumulator(str(log_dir))
    events.Reload()
    return [event.tensor_proto.string_val[0].decode() for event in events.Tensors("params/text_summary")]


def check_round_values(steps, values, net, name):
    """One value per round, at steps 0..n-1, equal to what the estimator recorded."""
    assert steps == list(range(len(net.rounds_)))
    if name == "n_labelled":
        expected = [100 + 50 * k for k in range(len(net.rounds_))]
    elif name.startswith("cumulative_"):
        expected = np.cumsum([record[name.removeprefix("cumulative_")] for record in net.rounds_])
    else:
        expected = [record[name] for record in net.rounds_]
    assert values == pytest.approx(list(expected), rel=1e-6)


def test_mlflow_sink_logs_each_round_once_params_once_and_a_folder_per_round(digits, tmp_path):
    X, y = digits
    uri = str(tmp_path / "mlruns")
    logger = RoundLogger("mlflow", tracking_uri=uri, experiment_name="cal", X_val=X[1500:], y_val=y[1500:])
    net = run_campaign(make_net(callbacks=[("tracker", logger)]), X, y)
    client = mlflow_client(uri)
    run = client.get_run(logger.run_id_)
    assert client.get_experiment(run.info.experiment_id).name == "cal"

    for name in ROUND_METRICS:
        check_round_values(*mlflow_series(client, run.info.run_id, f"round/{name}"), net, name)
    steps, accuracies = mlflow_series(client, run.info.run_id, "round/val_accuracy")
    assert steps == list(range(N_ROUNDS)) and accuracies[-1] == pytest.approx(net.score(X[1500:], y[1500:]))
    # the epochs: one global step per epoch of the campaign, growing across rounds
    steps, _ = mlflow_series(client, run.info.run_id, "epoch/train_loss")
    assert steps == list(range(1, len(net.history) + 1)) == [entry["epoch"] for entry in net.history]
    assert len(net.history) == sum(record["epochs"] for record in net.rounds_)

    params = run.data.params
    assert params["estimator"] == "skcal.estimator.ContinualActiveClassifier"
    assert (params["module"], params["lr"], params["replay"], params["round_epochs"]) == (
        "conftest.MLP",
        "0.1",
        "er",
        "3",
    )
    assert "0x" not in "".join(params.values())  # no memory addresses: two runs of one setting log the same text

    folders = sorted(artifact.path for artifact in client.list_artifacts(run.info.run_id))
    assert folders == [f"round-{k:03d}" for k in range(N_ROUNDS)]
    for k, folder in enumerate(folders):
        saved = json.loads(
            Path(client.download_artifacts(run.info.run_id, f"{folder}/record.json", str(tmp_path))).read_text()
        )
        assert saved["record"] == json.loads(json.dumps(net.rounds_[k]))
        assert saved["metrics"]["n_labelled"] == 100 + 50 * k

    assert client.get_run(run.info.run_id).info.status == "RUNNING"  # a campaign has no last round of its own
    logger.end_campaign()
    assert client.get_run(run.info.run_id).info.status == "FINISHED"


def test_each_campaign_of_a_net_gets_its_own_mlflow_run(digits, tmp_path):
    X, y = digits
    uri = str(tmp_path / "mlruns")
    logger = RoundLogger("mlflow", tracking_uri=uri, run_name="digits", tags={"team": "cal"}, log_record=False)
    net = run_campaign(make_net(callbacks=[("tracker", logger)]), X, y, n_rounds=2)
    first = logger.run_id_
    run_campaign(net.set_params(lr=0.05), X, y, n_rounds=3)  # fit again: a new campaign
    second = logger.run_id_
    client = mlflow_client(uri)
    assert first != second
    assert client.get_run(first).info.status == "FINISHED"  # ended when the next campaign started
    assert mlflow_series(client, first, "round/n_labelled")[0] == [0, 1]
    assert mlflow_series(client, second, "round/n_labelled")[0] == [0, 1, 2]
    assert (client.get_run(first).data.params["lr"], client.get_run(second).data.params["lr"]) == ("0.1", "0.05")
    assert client.get_run(second).data.tags["team"] == "cal" and client.get_run(second).info.run_name == "digits"
    assert client.list_artifacts(second) == []  # log_record=False


def test_tensorboard_sink_writes_rounds_epochs_params_once_and_round_folders(digits, tmp_path):
    X, y = digits
    logger = RoundLogger("tensorboard", log_dir=tmp_path / "tb", run_name="er", log_checkpoint=True)
    net = run_campaign(make_net(callbacks=[("tracker", logger)]), X, y)
    log_dir = logger.log_dir_
    assert log_dir.parent == tmp_path / "tb" and log_dir.name.startswith("er-")

    for name in ROUND_METRICS:
        check_round_values(*tensorboard_series(log_dir, f"round/{name}"), net, name)
    steps, _ = tensorboard_series(log_dir, "epoch/train_loss")
    assert steps == list(range(1, len(net.history) + 1))
    texts = params_texts(log_dir)
    assert len(texts) == 1 and "| lr | 0.1 |" in texts[0] and "| module | conftest.MLP |" in texts[0]

    folders = sorted(path.name for path in log_dir.iterdir() if path.is_dir())
    assert folders == [f"round-{k:03d}" for k in range(N_ROUNDS)]
    assert json.loads((log_dir / "round-002" / "record.json").read_text())["record"]["round"] == 2
    resumed = make_net().load_checkpoint(log_dir / "round-002")  # each round's checkpoint, not the last one
    assert len(resumed.rounds_) == 3 and len(resumed.labelled_history_) == 200

    run_campaign(net, X, y, n_rounds=2)  # a new campaign: a new folder, the first one untouched
    assert logger.log_dir_ != log_dir and len(params_texts(log_dir)) == 1
    assert tensorboard_series(logger.log_dir_, "round/n_labelled")[0] == [0, 1]


def test_a_writer_given_is_used_and_left_open(digits, tmp_path):
    X, y = digits
    writer = SummaryWriter(str(tmp_path / "given"))
    logger = RoundLogger("tensorboard", writer=writer, log_epochs=False)
    net = run_campaign(make_net(callbacks=[("tracker", logger)]), X, y, n_rounds=3)
    logger.end_campaign()
    writer.add_scalar("after", 1.0, 0)  # still the user's to use
    writer.close()
    assert logger.log_dir_ == tmp_path / "given"
    check_round_values(*tensorboard_series(tmp_path / "given", "round/n_new"), net, "n_new")
    events = EventAccumulator(str(tmp_path / "given"))
    events.Reload()
    assert not [tag for tag in events.Tags()["scalars"] if tag.startswith("epoch/")]


def test_through_skorchs_mlflow_logger_epochs_and_rounds_share_the_run_without_colliding(digits, tmp_path):
    X, y = digits
    client = mlflow_client(str(tmp_path / "mlruns"))
    run = client.create_run(client.create_experiment("skorch"))
    skorch_logger = MlflowLogger(run, client, terminate_after_train=False, create_artifact=False)
    net = run_campaign(make_net(callbacks=[skorch_logger, ("tracker", RoundLogger())]), X, y)
    run_id = run.info.run_id

    steps, _ = mlflow_series(client, run_id, "train_loss")  # skorch's own: step = epoch, across rounds
    assert steps == list(range(1, len(net.history) + 1))
    for name in ROUND_METRICS:
        check_round_values(*mlflow_series(client, run_id, f"round/{name}"), net, name)
    assert "epoch/train_loss" not in client.get_run(run_id).data.metrics  # the epochs are skorch's to log
    assert client.get_run(run_id).data.params["replay"] == "er"
    assert sorted(a.path for a in client.list_artifacts(run_id)) == [f"round-{k:03d}" for k in range(N_ROUNDS)]
    dict(net.callbacks_)["tracker"].end_campaign()
    assert client.get_run(run_id).info.status == "RUNNING"  # not the RoundLogger's run: not its to end


def test_through_skorchs_tensorboard_with_its_defaults(digits, tmp_path):
    X, y = digits
    # close_after_train=True closes the writer after every round's training: logging still works
    writer = SummaryWriter(str(tmp_path / "tb"))
    net = run_campaign(make_net(callbacks=[TensorBoard(writer), ("tracker", RoundLogger())]), X, y)
    steps, _ = tensorboard_series(tmp_path / "tb", "Loss/train_loss")
    assert steps == list(range(1, len(net.history) + 1))
    for name in ROUND_METRICS:
        check_round_values(*tensorboard_series(tmp_path / "tb", f"round/{name}"), net, name)
    assert len(params_texts(tmp_path / "tb")) == 1


class FailOnce(Callback):
    """Fail round ``index``'s second epoch, the first time only."""

    def __init__(self, index):
        self.index = index

    def initialize(self):
        self.failed_ = False
        return self

    def on_epoch_end(self, net, **kwargs):
        if net.round_.index == self.index and net.round_.epochs == 2 and not self.failed_:
            self.failed_ = True
            raise RuntimeError("a round that fails")


def test_a_round_that_fails_and_is_retried_logs_once(digits, tmp_path):
    X, y = digits
    logger = RoundLogger("tensorboard", log_dir=tmp_path)
    net = run_campaign(make_net(callbacks=[FailOnce(2), ("tracker", logger)]), X, y, n_rounds=2)
    with pytest.raises(RuntimeError, match="a round that fails"):
        net.partial_fit(X[150:200], y[150:200])
    net.partial_fit(X[150:200], y[150:200])
    steps, _ = tensorboard_series(logger.log_dir_, "epoch/train_loss")
    assert steps == list(range(1, len(net.history) + 1))  # the failed round's epochs were never logged
    check_round_values(*tensorboard_series(logger.log_dir_, "round/n_labelled"), net, "n_labelled")


def test_mlflow_and_tensorboard_at_once(digits, tmp_path):
    X, y = digits
    logger = RoundLogger(("mlflow", "tensorboard"), tracking_uri=str(tmp_path / "mlruns"), log_dir=tmp_path / "tb")
    net = run_campaign(make_net(callbacks=[("tracker", logger)]), X, y, n_rounds=2)
    client = mlflow_client(str(tmp_path / "mlruns"))
    check_round_values(*mlflow_series(client, logger.run_id_, "round/n_labelled"), net, "n_labelled")
    check_round_values(*tensorboard_series(logger.log_dir_, "round/n_labelled"), net, "n_labelled")
    assert client.get_experiment(client.get_run(logger.run_id_).info.experiment_id).name == "Default"


def test_a_run_given_for_two_campaigns_warns_that_steps_overlap(digits, tmp_path):
    X, y = digits
    client = mlflow_client(str(tmp_path / "mlruns"))
    run_id = client.create_run("0").info.run_id
    net = run_campaign(make_net(callbacks=[("tracker", RoundLogger("mlflow", run=run_id, client=client))]), X, y, 2)
    with pytest.warns(UserWarning) as caught:
        run_campaign(net.set_params(lr=0.05), X, y, n_rounds=2)
    messages = " ".join(str(warning.message) for warning in caught)
    assert "already has rounds up to 1" in messages and "parameters ['lr']" in messages
    assert client.get_run(run_id).data.params["lr"] == "0.1"  # MLflow keeps a parameter's first value


def test_simulator_logs_each_cross_validation_fit_to_its_own_run(digits, tmp_path):
    X, y = digits
    uri = str(tmp_path / "mlruns")
    simulator = ActiveLearningSimulator(
        make_net(),
        initial_size=100,
        query_size=50,
        n_rounds=N_ROUNDS - 1,
        random_state=0,
        tracker=RoundLogger("mlflow", tracking_uri=uri, experiment_name="cv"),
    )
    fits = cross_validate(simulator, X[:800], y[:800], cv=2, return_estimator=True)["estimator"]
    client = mlflow_client(uri)
    runs = client.search_runs([client.get_experiment_by_name("cv").experiment_id])
    assert {run.info.run_id for run in runs} == {fit.tracker_.run_id_ for fit in fits} and len(runs) == 2
    assert simulator.tracker.__dict__.get("run_id_") is None  # the parameter itself is never used, only clones
    for fit in fits:
        run = client.get_run(fit.tracker_.run_id_)
        assert run.info.status == "FINISHED"
        assert run.data.params["simulator__n_rounds"] == "4" and run.data.params["lr"] == "0.1"
        assert run.data.params["simulator__query_strategy"] == "skcal.query.uncertainty.entropy_sampling"
        check_round_values(*mlflow_series(client, run.info.run_id, "round/n_labelled"), fit.estimator_, "n_labelled")
        steps, seconds = mlflow_series(client, run.info.run_id, "round/query_seconds")
        assert steps == list(range(N_ROUNDS)) and seconds == pytest.approx([r["query_seconds"] for r in fit.records_])
        assert mlflow_series(client, run.info.run_id, "round/train_seconds")[0] == list(range(N_ROUNDS))  # once
        files = [a.path for a in client.list_artifacts(run.info.run_id, "round-004")]
        assert sorted(files) == ["round-004/record.json", "round-004/simulation.json"]


def test_simulator_logs_held_out_accuracy_and_ends_a_failed_fit_as_failed(digits, tmp_path):
    X, y = digits
    uri = str(tmp_path / "mlruns")
    tracker = RoundLogger("mlflow", tracking_uri=uri)
    simulator = ActiveLearningSimulator(
        make_net(), initial_size=100, query_size=50, n_rounds=2, random_state=0, tracker=tracker
    ).fit(X[:600], y[:600], eval_set=(X[1500:], y[1500:]))
    client = mlflow_client(uri)
    for name in ("accuracy", "balanced_accuracy", "labelled_fraction"):
        steps, values = mlflow_series(client, simulator.tracker_.run_id_, f"round/{name}")
        assert steps == [0, 1, 2] and values == pytest.approx([record[name] for record in simulator.records_])

    calls = []

    def fails_in_round_two(learner, X_pool, n_instances=1):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("the oracle left")
        return entropy_sampling(learner, X_pool, n_instances=n_instances)

    simulator.set_params(query_strategy=fails_in_round_two)
    with pytest.raises(RuntimeError, match="the oracle left"):
        simulator.fit(X[:600], y[:600])
    failed = client.get_run(simulator.tracker_.run_id_)
    assert failed.info.status == "FAILED" and mlflow_series(client, failed.info.run_id, "round/n_new")[0] == [0, 1]


def test_simulator_rejects_a_shared_writer_before_training(digits, tmp_path):
    X, y = digits
    tracker = RoundLogger("tensorboard", writer=SummaryWriter(str(tmp_path)))
    simulator = ActiveLearningSimulator(make_net(), n_rounds=1, tracker=tracker)
    with pytest.raises(ValueError, match="give it log_dir= instead"):
        simulator.fit(X[:300], y[:300])
    assert not hasattr(simulator, "estimator_")


def test_log_campaign_logs_finished_records(tmp_path):
    records = [
        {"round": 0, "n_labelled": 10, "accuracy": 0.5, "strategy": "seed", "stopped": False},
        {"round": 1, "n_labelled": 20, "accuracy": 0.75, "strategy": "er", "round_accuracies": [1.0, 0.5]},
    ]
    uri = str(tmp_path / "mlruns")
    run_id = log_campaign(records, {"replay": "er", "module": MLP}, tracking_uri=uri, experiment_name="done")
    client = mlflow_client(uri)
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED" and run.data.params == {"replay": "er", "module": "conftest.MLP"}
    assert mlflow_series(client, run_id, "round/accuracy") == ([0, 1], [0.5, 0.75])
    assert set(run.data.metrics) == {"round/n_labelled", "round/accuracy"}  # not the text, bool or list
    with pytest.raises(ValueError, match=r"records \[0\] have no 'round'"):
        log_campaign([{"accuracy": 1.0}], tracking_uri=uri)


def test_bench_logs_each_campaign_trained_as_a_run(tmp_path):
    data = load_benchmark_data("digits")
    data.estimator_params.update(max_epochs=2, round_epochs=1)
    uri = str(tmp_path / "mlruns")
    result = run_benchmark(data, ["retrain", "er"], [0.1], seeds=1, mlflow=uri, out=tmp_path / "out")
    client = mlflow_client(uri)
    runs = client.search_runs([client.get_experiment_by_name("skcal bench").experiment_id])
    assert sorted(run.info.run_name for run in runs) == ["digits er seed 0", "digits retrain seed 0"]
    for run in runs:
        method = run.data.tags["method"]
        assert run.data.params["method"] == method and run.data.params["dataset"] == "digits"
        rounds = [r for r in result.rounds if r["method"] == method]
        for name in ("accuracy", "cumulative_samples_backpropagated", "cumulative_train_seconds", "n_labelled"):
            steps, values = mlflow_series(client, run.info.run_id, f"round/{name}")
            assert steps == [r["round"] for r in rounds] and values == pytest.approx([r[name] for r in rounds])
    # loaded from --out, not trained: not logged again
    run_benchmark(data, ["retrain", "er"], [0.1], seeds=1, mlflow=uri, out=tmp_path / "out")
    assert len(client.search_runs([runs[0].info.experiment_id])) == 2


def test_bench_rejects_an_unusable_mlflow_uri_before_training(tmp_path, capsys):
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exit_info:
        main(["bench", "--methods", "retrain,er", "--mlflow", "bogus://nowhere", "--out", str(out), "--quiet"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "argument --mlflow: cannot log to the MLflow tracking URI 'bogus://nowhere'" in err
    assert not out.exists()


def test_without_mlflow_the_tracking_extra_is_named(monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(sys.modules, "mlflow", None)  # not installed, as far as imports go
    with pytest.raises(ImportError, match=re.escape("pip install 'skcal[tracking]'")):
        RoundLogger("mlflow").initialize()
    with pytest.raises(SystemExit) as exit_info:
        main(["bench", "--quick", "--mlflow", str(tmp_path / "mlruns"), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "skcal bench needs mlflow" in err and "pip install 'skcal[tracking]'" in err
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"sink": "wandb"}, ValueError, "sink='wandb' is not valid: unknown sink(s) ['wandb']"),
        ({"sink": ["mlflow", "mlflow"]}, ValueError, "given more than once"),
        ({"sink": 3}, TypeError, "sink=3 is not valid"),
        ({"sink": "tensorboard", "writer": object()}, TypeError, "must be a torch.utils.tensorboard.SummaryWriter"),
        ({"sink": "tensorboard", "tracking_uri": "mlruns"}, ValueError, "tracking_uri= is only used by the 'mlflow'"),
        ({"writer": SummaryWriter}, ValueError, "writer= is only used by the 'tensorboard' sink"),
        ({"sink": "mlflow", "client": "not a client"}, TypeError, "must be an mlflow.tracking.MlflowClient"),
        ({"sink": "mlflow", "run": 42}, TypeError, "run=42 is not valid"),
        ({"sink": "mlflow", "run": "abc", "experiment_name": "x"}, ValueError, "give one or the other"),
        ({"sink": "mlflow", "client": 1, "tracking_uri": "x"}, ValueError, "not both"),
        ({"sink": "tensorboard", "log_dir": 5}, TypeError, "log_dir=5 is not valid"),
        ({"X_val": np.zeros((3, 64))}, ValueError, "X_val= is given without y_val="),
        ({"X_val": np.zeros((3, 64)), "y_val": [0, 1]}, ValueError, "X_val has 3 samples but y_val has 2"),
        ({"X_val": np.zeros((2, 64)), "y_val": [0, 1], "scoring": "nope"}, ValueError, "not a scikit-learn scorer"),
        ({"scoring": "accuracy"}, ValueError, "neither is given"),
        ({"log_epochs": "yes"}, TypeError, "log_epochs='yes' is not valid"),
    ],
)
def test_bad_parameters_are_clear_errors(kwargs, error, message):
    with pytest.raises(error, match=re.escape(message)):
        RoundLogger(**kwargs).initialize()


def test_a_bad_logger_fails_the_seed_round_and_leaves_the_net_as_it_was(digits, tmp_path):
    X, y = digits
    net = make_net(callbacks=[("tracker", RoundLogger("tensorboard", writer="runs"))])
    with pytest.raises(TypeError, match="writer='runs' is not valid"):
        net.fit(X[:100], y[:100])
    assert not net.__sklearn_is_fitted__()

    writer = SummaryWriter(str(tmp_path))
    net = run_campaign(make_net(callbacks=[("tb", TensorBoard(writer)), ("tracker", RoundLogger())]), X, y, 2)
    rounds, predictions = list(net.rounds_), net.predict_proba(X[1500:])
    net.set_params(callbacks__tb=None)  # the "skorch" sink without a skorch logger on the net
    with pytest.raises(ValueError, match="the net has neither: add one to callbacks="):
        net.fit(X[:100], y[:100])
    assert net.rounds_ == rounds and np.array_equal(net.predict_proba(X[1500:]), predictions)


def test_logging_outside_a_campaign_and_bad_values_are_clear_errors(tmp_path):
    logger = RoundLogger("tensorboard", log_dir=tmp_path).initialize()
    with pytest.raises(RuntimeError, match="no campaign is open"):
        logger.log_metrics({"accuracy": 0.5}, step=0)
    logger.start_campaign()
    with pytest.raises(TypeError, match="Metric 'accuracy' is '0.5'; a metric must be a real number"):
        logger.log_metrics({"n_labelled": 10, "accuracy": "0.5"}, step=0)
    with pytest.raises(ValueError, match="status='DONE' is not valid"):
        logger.end_campaign("DONE")
    logger.end_campaign()
    events = EventAccumulator(str(logger.log_dir_))
    events.Reload()
    assert events.Tags()["scalars"] == []  # the bad call logged nothing, not even its good metric


def test_parameters_are_logged_as_stable_readable_text():
    def score(net, X, y):
        return 1.0

    params = {
        "module": MLP,
        "optimizer": torch.optim.SGD,
        "scoring": score,
        "query": functools.partial(entropy_sampling, n_instances=5),
        "classes": np.arange(3),
        "X_val": np.zeros((100, 64), dtype=np.float32),
        "device": torch.device("cpu"),
        "callbacks": [("tracker", RoundLogger("mlflow", tracking_uri="mlruns"))],
        "module__sizes": {"hidden": 32},
        "_private": 1,
        "lr": np.float32(0.5),
    }
    text = loggable_params(params)
    assert text["module"] == "conftest.MLP" and text["optimizer"] == "torch.optim.sgd.SGD"
    assert text["scoring"].endswith("test_parameters_are_logged_as_stable_readable_text.<locals>.score")
    assert text["query"] == "partial(skcal.query.uncertainty.entropy_sampling, n_instances=5)"
    assert text["classes"] == "[0, 1, 2]" and text["X_val"] == "array(shape=(100, 64), dtype=float32)"
    assert text["device"] == "cpu" and text["lr"] == "0.5" and text["module__sizes__hidden"] == "32"
    assert text["callbacks"].startswith("[(tracker, RoundLogger(sink=mlflow, tracking_uri=mlruns,")
    assert "_private" not in text and all("0x" not in value for value in text.values())
    assert len(describe(list(range(1000)))) == 500
