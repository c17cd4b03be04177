"""``skcal serve`` as a process: the first /predict after a restart, and SIGTERM during a round.

The backend runs as ``python -m skcal serve`` on 127.0.0.1, as in production.
The restart probe uses the built-in text model (the sentence encoder's load
raced the first request: 500 ``ImportError`` 17 times out of 17); the
shutdown tests use a tiny pipeline whose round takes a set time
(:func:`slow_round_pipeline`, importable by the child process from this file).
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from sklearn.feature_extraction.text import HashingVectorizer
from test_serve_backend import CONFIG, created, labelled, tiny_pipeline

TESTS = Path(__file__).resolve().parent
ROUND_SECONDS = "SKCAL_TEST_ROUND_SECONDS"


class SlowRoundHash(HashingVectorizer):
    """Hashed features that take ``$SKCAL_TEST_ROUND_SECONDS`` for a round (a call with several texts)."""

    def transform(self, X):
        if len(X) > 1:
            time.sleep(float(os.environ.get(ROUND_SECONDS, "0")))
        return super().transform(X)


def slow_round_pipeline():
    """The tiny test pipeline, its rounds made slow (``--factory test_serve_process:slow_round_pipeline``)."""
    pipeline = tiny_pipeline()
    pipeline.steps[0] = ("hash", SlowRoundHash(n_features=64, alternate_sign=False))
    return pipeline


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def http(port, path, body=None, timeout=60):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", data=data, method="GET" if body is None else "POST"
    )
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


class ServeProcess:
    """``python -m skcal serve`` on a free port of 127.0.0.1, logging to a file."""

    def __init__(self, state, arguments, environment=None):
        self.state, self.port = Path(state), free_port()
        self.log = self.state.parent / f"{self.state.name}-{self.port}.log"
        command = [sys.executable, "-m", "skcal", "serve", "--port", str(self.port), "--state-dir", str(state),
                   "--threads", "1", *arguments]  # fmt: skip
        env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join([str(TESTS), *sys.path])}
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, env={**env, **(environment or {})}
            )

    def wait_for_port(self, timeout=120):
        """Return as soon as the port accepts a connection (polled every 10 ms)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log.read_text()[-3000:]
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.01)
        raise AssertionError(f"the port never opened: {self.log.read_text()[-3000:]}")

    def health(self):
        return http(self.port, "/health")[1]

    def wait(self, predicate, timeout=120, what="the backend"):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            health = self.health()
            if predicate(health):
                return health
            time.sleep(0.1)
        raise AssertionError(f"gave up waiting for {what}: {self.health()}")

    def stop(self, sig=signal.SIGKILL):
        if self.process.poll() is None:
            self.process.send_signal(sig)
        return self.process.wait(60)


@pytest.fixture
def processes():
    started = []
    yield lambda *args, **kwargs: started.append(ServeProcess(*args, **kwargs)) or started[-1]
    for process in started:
        process.stop()


def label(port, items):
    for annotation_id, choice, text in items:
        status, answer = http(port, "/webhook", created(annotation_id, choice, text))
        assert status == 201, answer


def test_the_first_predict_after_every_restart_answers(processes, tmp_path):
    """The restart probe: the model loads before the port opens, so the first request never races it."""
    state = tmp_path / "text"
    first = processes(state, ["--factory", "text", "--train-every", "2"])
    first.wait_for_port()
    assert http(first.port, "/setup", {"project": "3.1", "schema": CONFIG})[0] == 200
    label(first.port, labelled(2))
    first.wait(lambda health: health["rounds"] == 1, what="the seed round")
    first.stop(signal.SIGKILL)
    task = {"tasks": [{"id": 1, "data": {"text": "What a lovely, fun film."}}]}
    for restart in range(2):
        again = processes(state, ["--factory", "text", "--train-every", "2"])
        again.wait_for_port()
        status, answer = http(again.port, "/predict", task)  # at once, as Label Studio does when a task opens
        assert status == 200, f"restart {restart}: {status} {answer}"
        assert answer["results"][0]["model_version"].endswith("-round-0")
        again.stop(signal.SIGKILL)


def test_sigterm_lets_the_round_in_progress_finish_and_commit(processes, tmp_path):
    """SIGTERM once abandoned the round: uvicorn re-raised the signal, so backend.close() never ran."""
    state = tmp_path / "graceful"
    backend = processes(state, ["--factory", "test_serve_process:slow_round_pipeline", "--train-every", "4"],
                        {ROUND_SECONDS: "3"})  # fmt: skip
    backend.wait_for_port()
    http(backend.port, "/setup", {"project": "3.1", "schema": CONFIG})
    label(backend.port, labelled(4))
    backend.wait(lambda health: health["training"], what="the round to start")
    started = time.monotonic()
    assert backend.stop(signal.SIGTERM) == 0
    took = time.monotonic() - started
    assert took < 3 + 10, f"stopping took {took:.1f} s"
    pointer = (state / "CURRENT").read_text().strip()
    ledger = json.loads((state / "commits" / pointer / "ledger.json").read_text())
    assert ledger["model_version"].endswith("-round-0") and sorted(ledger["ledger"]["order"]) == [0, 1, 2, 3]
    assert "everything acknowledged is committed" in backend.log.read_text()


def test_sigterm_abandons_a_round_longer_than_the_shutdown_timeout_and_nothing_is_lost(processes, tmp_path):
    state = tmp_path / "abandoned"
    arguments = ["--factory", "test_serve_process:slow_round_pipeline", "--train-every", "4", "--shutdown-timeout", "1"]
    backend = processes(state, arguments, {ROUND_SECONDS: "60"})
    backend.wait_for_port()
    http(backend.port, "/setup", {"project": "3.1", "schema": CONFIG})
    label(backend.port, labelled(4))
    backend.wait(lambda health: health["training"], what="the round to start")
    started = time.monotonic()
    assert backend.stop(signal.SIGTERM) == 0
    assert time.monotonic() - started < 1 + 10  # the shutdown timeout and uvicorn's own shutdown, not the round
    assert "without waiting for the round in progress" in backend.log.read_text()
    assert not (state / "CURRENT").exists()  # nothing half written
    again = processes(state, arguments, {ROUND_SECONDS: "0"})
    again.wait_for_port()
    health = again.wait(lambda health: health["rounds"] == 1, what="the abandoned round, at the next start")
    assert health["labelled"] == 4 and health["pending"] == 0
