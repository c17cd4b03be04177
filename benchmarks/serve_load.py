"""Load and fault suite for ``skcal serve``: latency, memory, kills, fuzzing, full and read-only disks.

Every scenario starts ``python -m skcal serve`` (the built-in text model by
default, ``--train-every 20``) on 127.0.0.1 and drives it with threads that
play Label Studio: annotators sending webhooks (creations, updates and
deletions of their own annotations, about one a second each), and a
``/predict`` mix of 1, 10 and 100 tasks. A stand-in for Label Studio's export
endpoint holds every annotation made, so that a backend given
``--label-studio-url`` can recover what its failed webhooks missed. Nothing
leaves 127.0.0.1, and every loop stops by itself.

Scenarios (``python benchmarks/serve_load.py [--threads N] SCENARIO [options]``):

``load``
    8 annotators and the predict mix for ``--minutes``; with ``--big-predict
    N``, a request of N tasks every ``--big-every`` seconds, and a 1-task
    probe every 0.2 s. Latency percentiles per endpoint (and of webhooks and
    the probe while a big request runs), RSS every 5 s, labels acknowledged
    against labels held.
``kills``
    ``--kills`` SIGKILLs under continuous webhooks, several of them mid-round;
    labels sent, acknowledged, and held at the end.
``fuzz``
    ``--bodies`` malformed bodies (:func:`fuzz_bodies`) at /setup, /predict
    and /webhook: status counts (a 5xx is a failure), then a round must still train.
``faults``
    Needs root (mounts a small tmpfs): the state folder fills up, then is
    freed; then it is made read-only, then writable. Statuses per phase,
    ``/health``'s faults, recovery times, and labels held.
``slowloris``
    ``--connections`` connections sending a byte a second against a backend
    whose open-file limit is ``--nofile``; /health latency meanwhile and log growth.
``restart``
    ``--restarts`` restarts of a trained backend, each probed with a /predict
    the moment its port opens.
``large``
    ``--concurrent`` /predict requests of one ``--chars``-character text at
    once, and one of ``--tasks`` tasks: time and RSS before, at peak and after.

The figures in docs/labelstudio.md come from this script; each run prints a
JSON report (and writes it to ``--out`` if given). A failed check (a 5xx, a
lost acknowledged label) makes the exit status 1.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import random
import resource
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np

CONFIG = """<View><Text name="text" value="$text"/><Choices name="sentiment" toName="text" choice="single">
<Choice value="Positive"/><Choice value="Negative"/></Choices></View>"""
PROJECT = 7
WORDS = {
    "Positive": "good great lovely fun fine superb warm bright kind brilliant".split(),
    "Negative": "bad awful sad dull poor grim cold broken cruel tedious".split(),
}
FILLER = "the a film book day story plot cast scene ending music place team work idea".split()


# -- texts, payloads, and a stand-in for Label Studio ---------------------------------------------
def sentence(rng: random.Random, label: str, serial: int) -> str:
    """Return a short text leaning towards ``label``, unique by ``serial``."""
    words = [rng.choice(WORDS[label] if rng.random() < 0.4 else FILLER) for _ in range(rng.randint(6, 16))]
    return " ".join(words) + f" (#{serial})"


def annotation_body(action: str, annotation_id: int, task_id: int, label: str, text: str) -> dict:
    region = {"from_name": "sentiment", "to_name": "text", "type": "choices", "value": {"choices": [label]}}
    return {
        "action": action,
        "project": {"id": PROJECT, "label_config": CONFIG},
        "annotation": {"id": annotation_id, "task": task_id, "result": [region]},
        "task": {"id": task_id, "data": {"text": text}},
    }


class Studio:
    """Every annotation made (as Label Studio holds it), served as its JSON export on 127.0.0.1."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.annotations: dict = {}  # id -> (task, text, label)
        studio = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                with studio.lock:
                    tasks = [
                        {"id": task, "data": {"text": text}, "annotations": [annotation_body(
                            "X", annotation, task, label, text)["annotation"]]}
                        for annotation, (task, text, label) in studio.annotations.items()
                    ]  # fmt: skip
                self._send(json.dumps(tasks).encode())

            def do_POST(self) -> None:  # noqa: N802
                self._send(b"{}")

            do_PATCH = do_POST

            def _send(self, body: bytes) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def record(self, annotation: int, value: tuple | None) -> None:
        with self.lock:
            if value is None:
                self.annotations.pop(annotation, None)
            else:
                self.annotations[annotation] = value

    def labels(self) -> dict:
        with self.lock:
            return {annotation: label for annotation, (_, _, label) in self.annotations.items()}

    def close(self) -> None:
        self.server.shutdown()


# -- the backend as a process ---------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def request(port: int, method: str, path: str, body: object = None, raw: bytes | None = None,
            timeout: float = 120.0) -> tuple:  # fmt: skip
    """One HTTP request to 127.0.0.1; return ``(status or None, decoded answer, seconds)``."""
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    started = time.perf_counter()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request(method, path, body=data, headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        payload = response.read()
        try:
            answer = json.loads(payload)
        except ValueError:
            answer = payload[:200].decode(errors="replace")
        return response.status, answer, time.perf_counter() - started
    except (OSError, http.client.HTTPException) as error:
        return None, f"{type(error).__name__}: {error}", time.perf_counter() - started
    finally:
        connection.close()


class Backend:
    """``python -m skcal serve`` on a free port, its log in the run folder."""

    def __init__(self, folder: Path, arguments: list, threads: int, nofile: int | None = None):
        self.folder, self.arguments, self.threads, self.nofile = folder, arguments, threads, nofile
        self.state = folder / "state"
        self.log = folder / "serve.log"
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 300.0, wait: bool = True) -> Backend:
        command = [sys.executable, "-m", "skcal", "serve", "--port", str(self.port), "--state-dir", str(self.state),
                   "--threads", str(self.threads), *self.arguments]  # fmt: skip
        environment = {**os.environ, "OMP_NUM_THREADS": str(self.threads),
                       "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), *sys.path])}  # fmt: skip

        def limit_files() -> None:
            if self.nofile is not None:
                resource.setrlimit(resource.RLIMIT_NOFILE, (self.nofile, self.nofile))

        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=environment,
                                            preexec_fn=limit_files)  # fmt: skip
        if wait:
            self.wait_until(lambda health: health is not None, timeout, "the backend to answer /health")
        return self

    def health(self) -> dict | None:
        status, answer, _ = request(self.port, "GET", "/health", timeout=30)
        return answer if status == 200 else None

    def wait_until(self, predicate, timeout: float, what: str) -> dict:  # noqa: ANN001
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"skcal serve exited with {self.process.returncode}; see {self.log}")
            health = self.health()
            if predicate(health):
                return health
            time.sleep(0.1)
        raise TimeoutError(f"gave up waiting {timeout:.0f} s for {what}")

    def rss_mb(self) -> float | None:
        try:
            with open(f"/proc/{self.process.pid}/status") as status:
                for line in status:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1]) / 1024
        except OSError:
            return None
        return None

    def stop(self, sig: int = signal.SIGTERM) -> int | None:
        if self.process is None or self.process.poll() is not None:
            return None if self.process is None else self.process.returncode
        self.process.send_signal(sig)
        try:
            return self.process.wait(120)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait(30)

    def committed_labels(self) -> tuple[dict, list]:
        """Return the newest commit's labels and annotation order, read from the state folder."""
        pointer = (self.state / "CURRENT").read_text().strip()
        stored = json.loads((self.state / "commits" / pointer / "ledger.json").read_text())["ledger"]
        return {int(key): value for key, value in stored["labels"].items()}, list(stored["order"])


# -- the traffic ----------------------------------------------------------------------------------
class Recorder:
    """Every request's endpoint, time, latency and status."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.rows: list = []
        self.started = time.monotonic()

    def add(self, endpoint: str, seconds: float, status: int | None, tag: str = "") -> None:
        with self.lock:
            self.rows.append((endpoint + tag, time.monotonic() - self.started, seconds, status))

    def summary(self) -> dict:
        with self.lock:
            rows = list(self.rows)
        report = {}
        for endpoint in sorted({row[0] for row in rows}):
            seconds = np.array([row[2] for row in rows if row[0] == endpoint])
            statuses: dict = {}
            for row in rows:
                if row[0] == endpoint:
                    statuses[str(row[3])] = statuses.get(str(row[3]), 0) + 1
            report[endpoint] = {
                "requests": len(seconds),
                "p50_ms": round(float(np.percentile(seconds, 50)) * 1000, 1),
                "p95_ms": round(float(np.percentile(seconds, 95)) * 1000, 1),
                "p99_ms": round(float(np.percentile(seconds, 99)) * 1000, 1),
                "max_ms": round(float(seconds.max()) * 1000, 1),
                "over_1s": int((seconds > 1).sum()),
                "statuses": statuses,
            }
        return report


class Annotators:
    """``n`` annotators, each sending about ``rate`` webhooks a second: creations, updates and deletions."""

    def __init__(self, backend: Backend, studio: Studio, recorder: Recorder, n: int = 8, rate: float = 1.0,
                 seed: int = 0):  # fmt: skip
        self.backend, self.studio, self.recorder, self.n, self.rate = backend, studio, recorder, n, rate
        self.seed = seed
        self.lock = threading.Lock()
        self.acknowledged: dict = {}  # annotation -> label, or None once deleted (last acknowledged change)
        self.uncertain: set = set()  # a change not acknowledged after the last that was: Label Studio may restore it
        self.sent = self.refused = 0
        self.stop = threading.Event()
        self.busy = threading.Event()  # set while a big /predict runs (to tag latencies)
        self.threads: list = []

    def start(self) -> Annotators:
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(self.n)]
        for thread in self.threads:
            thread.start()
        return self

    def _run(self, index: int) -> None:
        rng = random.Random(self.seed * 1000 + index)
        mine: dict = {}  # annotation -> (task, text, label)
        serial = 0
        while not self.stop.wait(rng.expovariate(self.rate)):
            roll = rng.random()
            if mine and roll < 0.1:
                annotation = rng.choice(list(mine))
                task, text, label = mine[annotation]
                label = "Negative" if label == "Positive" else "Positive"
                action, body, change = "ANNOTATION_UPDATED", annotation_body(
                    "ANNOTATION_UPDATED", annotation, task, label, text), (task, text, label)  # fmt: skip
            elif mine and roll < 0.2:
                annotation = rng.choice(list(mine))
                action, change = "ANNOTATIONS_DELETED", None
                body = {"action": action, "project": {"id": PROJECT}, "annotations": [{"id": annotation}]}
            else:
                serial += 1
                annotation, task = index * 10**7 + serial, index * 10**7 + serial
                label = rng.choice(("Positive", "Negative"))
                text = sentence(rng, label, annotation)
                action, change = "ANNOTATION_CREATED", (task, text, label)
                body = annotation_body(action, annotation, task, label, text)
            self.studio.record(annotation, change)  # Label Studio holds it, whatever the webhook's fate
            if change is None:
                mine.pop(annotation, None)
            else:
                mine[annotation] = change
            status, _, seconds = request(self.backend.port, "POST", "/webhook", body, timeout=30)
            self.recorder.add("/webhook", seconds, status, " (big /predict running)" if self.busy.is_set() else "")
            with self.lock:
                self.sent += 1
                if status == 201:
                    self.acknowledged[annotation] = None if change is None else change[2]
                    self.uncertain.discard(annotation)
                else:  # refused, or no answer: the acknowledged state may rightly be replaced by Label Studio's
                    self.refused += status is not None and status >= 500
                    self.uncertain.add(annotation)

    def finish(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(60)

    def check(self, held: dict) -> dict:
        """Compare the labels held with the acknowledged ones (last change acknowledged); a difference is a loss."""
        with self.lock:
            expected = {k: v for k, v in self.acknowledged.items() if k not in self.uncertain}
            uncertain = len(self.uncertain)
        lost = [k for k, v in expected.items() if held.get(k) != v]
        return {"sent": self.sent, "acknowledged_changes": len(expected), "refused_5xx": self.refused,
                "last_change_not_acknowledged": uncertain, "held": len(held), "acknowledged_lost": len(lost),
                "lost_examples": lost[:5]}  # fmt: skip


def predict_mix(backend: Backend, recorder: Recorder, stop: threading.Event, seed: int = 1) -> None:
    """``/predict`` of 1, 10 or 100 tasks (weights 6:3:1), a pause of 0.2-1 s between."""
    rng = random.Random(seed)
    serial = 0
    while not stop.wait(rng.uniform(0.2, 1.0)):
        size = rng.choices((1, 10, 100), (6, 3, 1))[0]
        tasks = []
        for _ in range(size):
            serial += 1
            tasks.append({"id": serial, "data": {"text": sentence(rng, rng.choice(("Positive", "Negative")), -serial)}})
        status, _, seconds = request(backend.port, "POST", "/predict", {"tasks": tasks, "project": f"{PROJECT}.1"})
        recorder.add(f"/predict {size}", seconds, status)


def probe_predict(backend: Backend, recorder: Recorder, stop: threading.Event, busy: threading.Event) -> None:
    """Send a 1-task /predict every 0.2 s, tagged with whether a big /predict is running."""
    serial = 0
    while not stop.wait(0.2):
        serial += 1
        tasks = [{"id": serial, "data": {"text": f"a short probe sentence about a good film {serial}"}}]
        tag = " (big /predict running)" if busy.is_set() else ""
        status, _, seconds = request(backend.port, "POST", "/predict", {"tasks": tasks})
        recorder.add("/predict probe 1", seconds, status, tag)


def big_predict(backend: Backend, recorder: Recorder, stop: threading.Event, busy: threading.Event, tasks: int,
                every: float) -> None:  # fmt: skip
    rng = random.Random(2)
    while not stop.wait(every):
        body = {"tasks": [{"id": i, "data": {"text": sentence(rng, "Positive", -(10**8) - i)}} for i in range(tasks)]}
        busy.set()
        status, _, seconds = request(backend.port, "POST", "/predict", body, timeout=1800)
        busy.clear()
        recorder.add(f"/predict {tasks}", seconds, status)


def sample_rss(backend: Backend, stop: threading.Event, samples: list, every: float = 5.0) -> None:
    started = time.monotonic()
    while True:
        rss = backend.rss_mb()
        if rss is not None:
            samples.append((round(time.monotonic() - started, 1), round(rss, 1)))
        if stop.wait(every):
            return


def flush_and_read(backend: Backend, timeout: float = 600.0) -> tuple[dict, list]:
    """Train whatever waits (START_TRAINING), then read the committed labels."""
    backend.wait_until(lambda h: h is not None and not h.get("faults", {}).get("journal"), timeout, "the journal")
    request(backend.port, "POST", "/webhook", {"action": "START_TRAINING", "project": {"id": PROJECT}})
    backend.wait_until(lambda h: h is not None and h["pending"] == h.get("set_aside", 0) and not h["training"]
                       and not h.get("failed_steps"), timeout, "the last round")  # fmt: skip
    return backend.committed_labels()


def connect(backend: Backend, train_every: int) -> None:
    status, answer, _ = request(backend.port, "POST", "/setup", {"project": f"{PROJECT}.1", "schema": CONFIG})
    if status != 200:
        raise RuntimeError(f"/setup answered {status}: {answer}")


def backend_arguments(args: argparse.Namespace, studio: Studio | None) -> list:
    arguments = ["--factory", args.factory, "--train-every", str(args.train_every)]
    if studio is not None:
        arguments += ["--label-studio-url", studio.url, "--label-studio-token", "legacy-token", "--no-refresh"]
    return arguments


def held_check(annotators: Annotators, studio: Studio, held: dict, order: list) -> dict:
    report = annotators.check(held)
    made = studio.labels()
    report["made_in_label_studio"] = len(made)
    report["label_studio_annotations_not_held"] = sum(held.get(k) != v for k, v in made.items())
    report["held_but_not_in_label_studio"] = sum(k not in made for k in held)
    report["duplicated"] = len(order) - len(set(order))
    return report


# -- scenarios ------------------------------------------------------------------------------------
def scenario_load(args: argparse.Namespace, folder: Path) -> dict:
    studio = Studio()
    backend = Backend(folder, backend_arguments(args, studio), args.threads).start()
    recorder, stop, rss = Recorder(), threading.Event(), []
    try:
        connect(backend, args.train_every)
        train_rounds(backend, args.train_every, studio=studio)  # the seed round first: no 503 "no model yet"
        annotators = Annotators(backend, studio, recorder, args.annotators, args.rate).start()
        workers = [threading.Thread(target=predict_mix, args=(backend, recorder, stop), daemon=True),
                   threading.Thread(target=sample_rss, args=(backend, stop, rss), daemon=True)]  # fmt: skip
        if args.big_predict:
            workers += [
                threading.Thread(target=probe_predict, args=(backend, recorder, stop, annotators.busy), daemon=True),
                threading.Thread(target=big_predict, daemon=True,
                                 args=(backend, recorder, stop, annotators.busy, args.big_predict, args.big_every)),
            ]  # fmt: skip
        for worker in workers:
            worker.start()
        stop.wait(args.minutes * 60)
        stop.set()
        annotators.finish()
        for worker in workers:
            worker.join(1800)
        rounds = backend.health()["rounds"]
        held, order = flush_and_read(backend)
        first_minute = [mb for t, mb in rss if t >= 60]
        report = {
            "minutes": args.minutes,
            "annotators": args.annotators,
            "rounds": rounds,
            "endpoints": recorder.summary(),
            "labels": held_check(annotators, studio, held, order),
            "rss_mb": rss,
            "feature_cache": (backend.health() or {}).get("feature_cache"),
            "rss_after_1_min_mb": first_minute[0] if first_minute else None,
            "rss_at_end_mb": rss[-1][1] if rss else None,
        }
        if first_minute:
            report["rss_end_over_1_min"] = round(rss[-1][1] / first_minute[0], 3)
        report["ok"] = report["labels"]["acknowledged_lost"] == 0 and not any(
            status.startswith("5") for e in report["endpoints"].values() for status in e["statuses"]
        )
        return report
    finally:
        backend.stop()
        studio.close()


def scenario_kills(args: argparse.Namespace, folder: Path) -> dict:
    studio = Studio()
    backend = Backend(folder, backend_arguments(args, studio), args.threads).start()
    recorder, rng = Recorder(), random.Random(3)
    kills, mid_round, restart_seconds = 0, 0, []
    try:
        connect(backend, args.train_every)
        annotators = Annotators(backend, studio, recorder, args.annotators, args.rate).start()
        for _ in range(args.kills):
            time.sleep(rng.uniform(3, 10))
            health = backend.health()
            mid_round += bool(health and health["training"])
            backend.stop(signal.SIGKILL)
            kills += 1
            time.sleep(rng.uniform(0.5, 2))  # webhooks fail meanwhile: Label Studio keeps the annotations
            started = time.monotonic()
            backend.start()
            restart_seconds.append(round(time.monotonic() - started, 1))
        time.sleep(5)
        annotators.finish()
        held, order = flush_and_read(backend)
        labels = held_check(annotators, studio, held, order)
        ok = labels["acknowledged_lost"] == 0 and labels["label_studio_annotations_not_held"] == 0
        return {"kills": kills, "killed_mid_round": mid_round, "restart_seconds": restart_seconds,
                "endpoints": recorder.summary(), "labels": labels, "ok": ok}  # fmt: skip
    finally:
        backend.stop()
        studio.close()


def fuzz_bodies(n: int, seed: int = 0) -> list:
    """``n`` hostile requests: ``(path, raw body bytes)``, from mutations of valid /setup, /predict, /webhook bodies.

    Mutations: a field removed, replaced by a value of another type (null, booleans, huge and negative
    numbers, floats, lists, objects, long and empty strings, lone surrogates, markup, control characters),
    nested deeply, or the body cut short, made invalid UTF-8, or not JSON at all.
    """
    rng = random.Random(seed)
    strange = [None, True, False, 0, -1, 2**63, 10**400, 1.5, -0.0, "", " ", "x" * 5000, "\ud800", "\udfff x",
               "<View>\ud800</View>", "<!DOCTYPE x>", "<View/>", [], [None], {}, {"id": "1"}, {"id": [1]},
               "\x00\x01", "3.1", "9.1", "project", [[[[[]]]]], {"a": {"b": {"c": {}}}}]  # fmt: skip
    region = {"from_name": "sentiment", "to_name": "text", "type": "choices", "value": {"choices": ["Positive"]}}
    valid = [
        ("/setup", {"project": f"{PROJECT}.1", "schema": CONFIG, "hostname": "http://127.0.0.1:1",
                    "access_token": "x"}),
        ("/predict", {"tasks": [{"id": 1, "data": {"text": "good film"}}], "project": f"{PROJECT}.1",
                      "label_config": CONFIG}),
        ("/webhook", annotation_body("ANNOTATION_CREATED", 1, 1, "Positive", "good film")),
        ("/webhook", {"action": "ANNOTATIONS_CREATED", "project": {"id": PROJECT},
                      "annotation": [{"id": 2, "task": 2, "result": [region]}],
                      "task": [{"id": 2, "data": {"text": "fine"}}]}),
        ("/webhook", {"action": "ANNOTATIONS_DELETED", "project": {"id": PROJECT}, "annotations": [{"id": 1}]}),
        ("/webhook", {"action": "START_TRAINING", "project": {"id": PROJECT}}),
    ]  # fmt: skip

    def paths(value: object, prefix: tuple = ()) -> list:
        found = [prefix] if prefix else []
        if isinstance(value, dict):
            for key, item in value.items():
                found += paths(item, (*prefix, key))
        elif isinstance(value, list):
            for index, item in enumerate(value):
                found += paths(item, (*prefix, index))
        return found

    def mutate(body: object) -> object:
        body = json.loads(json.dumps(body))
        if not paths(body):  # every field already removed
            return body
        where = rng.choice(paths(body))
        parent = body
        for step in where[:-1]:
            parent = parent[step]
        kind = rng.random()
        if kind < 0.15 and isinstance(parent, dict):
            del parent[where[-1]]
        elif kind < 0.25:
            deep: object = rng.choice(strange)
            for _ in range(rng.randint(50, 600)):
                deep = [deep]
            parent[where[-1]] = deep
        else:
            parent[where[-1]] = rng.choice(strange)
        return body

    requests = []
    for _ in range(n):
        path, body = rng.choice(valid)
        for _ in range(rng.randint(1, 3)):
            body = mutate(body)
        raw = json.dumps(body, allow_nan=True).encode("utf-8", "surrogatepass")
        roll = rng.random()
        if roll < 0.05:
            raw = raw[: rng.randint(0, len(raw))]
        elif roll < 0.08:
            raw = raw.replace(b"good", b"\xff\xfe")
        elif roll < 0.1:
            raw = rng.choice([b"", b"null", b"[]", b"NaN", b"{" * 100_000, b'{"tasks": [' + b"1," * 20_000 + b"1]}"])
        requests.append((path, raw))
    return requests


def train_rounds(backend: Backend, train_every: int, rounds: int = 1, start: int = 0,
                 studio: Studio | None = None) -> None:  # fmt: skip
    """Send ``rounds * train_every`` labels (made in ``studio`` too, if given) and wait for the rounds."""
    rng, before = random.Random(start), backend.health()["rounds"]
    for i in range(start, start + rounds * train_every):
        label, annotation = ("Positive", "Negative")[i % 2], 10**9 + i
        text = sentence(rng, label, i)
        if studio is not None:
            studio.record(annotation, (annotation, text, label))
        request(backend.port, "POST", "/webhook", annotation_body("ANNOTATION_CREATED", annotation, annotation, label,
                                                                  text))  # fmt: skip
    backend.wait_until(lambda h: h["rounds"] >= before + rounds and not h["training"], 600, "the rounds")


def scenario_fuzz(args: argparse.Namespace, folder: Path) -> dict:
    backend = Backend(folder, backend_arguments(args, None), args.threads).start()
    statuses: dict = {}
    try:
        connect(backend, args.train_every)
        train_rounds(backend, args.train_every)  # a trained model: any 5xx is then the fuzz's doing
        for path, raw in fuzz_bodies(args.bodies, args.seed):
            status, answer, _ = request(backend.port, "POST", path, raw=raw, timeout=60)
            counts = statuses.setdefault(path, {})
            counts[str(status)] = counts.get(str(status), 0) + 1
            if status is None or status >= 500:
                print(f"FUZZ {status} {path} {raw[:200]!r}: {answer}", file=sys.stderr)
        connect(backend, args.train_every)
        train_rounds(backend, args.train_every, start=10**6)  # and training goes on
        server_errors = sum(n for counts in statuses.values() for s, n in counts.items() if s == "None" or s >= "5")
        return {"bodies": args.bodies, "statuses": statuses, "server_errors": server_errors,
                "trained_after": True, "ok": server_errors == 0}  # fmt: skip
    finally:
        backend.stop()


@contextlib.contextmanager
def small_filesystem(folder: Path, megabytes: int):
    """Mount a tmpfs of ``megabytes`` at ``folder`` (needs root); unmount it afterwards."""
    folder.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={megabytes}m", "tmpfs", str(folder)],
                          capture_output=True, text=True)  # fmt: skip
    if done.returncode != 0:
        raise PermissionError(f"cannot mount a tmpfs (root needed): {done.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def fill(folder: Path) -> Path:
    """Fill the file system of ``folder`` to the last byte; return the filler file."""
    filler = folder / "filler"
    descriptor = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    try:
        for size in (65536, 4096, 1):
            with contextlib.suppress(OSError):
                while True:
                    os.write(descriptor, b"\0" * size)
    finally:
        os.close(descriptor)
    return filler


def scenario_faults(args: argparse.Namespace, folder: Path) -> dict:
    studio, phases = Studio(), []
    with small_filesystem(folder / "disk", args.disk_mb) as disk:
        backend = Backend(disk, backend_arguments(args, studio), args.threads)
        backend.log = folder / "serve.log"
        backend.start()
        recorder = Recorder()
        try:
            connect(backend, args.train_every)
            annotators = Annotators(backend, studio, recorder, args.annotators, args.rate).start()

            def phase(name: str, seconds: float) -> None:
                recorder.rows.clear()
                faults, started = set(), time.monotonic()
                while time.monotonic() - started < seconds:
                    health = backend.health() or {}
                    faults |= {f"{k}: {v['error'][:140]}" for k, v in health.get("faults", {}).items()}
                    time.sleep(1)
                webhooks = recorder.summary().get("/webhook", {})
                phases.append({"phase": name, "webhook_statuses": webhooks.get("statuses"),
                               "webhook_p99_ms": webhooks.get("p99_ms"), "faults_seen": sorted(faults),
                               "failed_steps": (backend.health() or {}).get("failed_steps")})  # fmt: skip

            def recovered(name: str) -> None:
                started = time.monotonic()
                backend.wait_until(lambda h: h is not None and not h["faults"], 600, "the faults to clear")
                phases[-1]["recovered_in_s"] = round(time.monotonic() - started, 1)

            phase("normal", args.phase_seconds)
            # the worst moment for a full disk: the journal's write-ahead log just emptied, so that
            # every new label needs new space (SQLite checkpoints it by itself, every 1,000 pages)
            with contextlib.closing(sqlite3.connect(backend.state / "journal.sqlite3")) as journal:
                journal.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            filler = fill(disk)
            phase("disk full", args.phase_seconds)
            filler.unlink()
            recovered("space back")
            phase("space back", args.phase_seconds)
            # a read-only file system where commits are written (a tmpfs mounted read-only over
            # commits/: the journal's files, open for writing, cannot be remounted read-only)
            commits = backend.state / "commits"
            subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(commits)], check=True)
            try:
                phase("read-only commits", args.phase_seconds)
            finally:
                subprocess.run(["umount", str(commits)], check=True)
            recovered("writable again")
            phase("writable again", args.phase_seconds)
            annotators.finish()
            held, order = flush_and_read(backend)
            labels = held_check(annotators, studio, held, order)
            ok = labels["acknowledged_lost"] == 0 and labels["label_studio_annotations_not_held"] == 0
            return {"disk_mb": args.disk_mb, "phases": phases, "labels": labels, "ok": ok}
        finally:
            backend.stop()
            studio.close()


def scenario_slowloris(args: argparse.Namespace, folder: Path) -> dict:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, args.connections + 256), hard))
    backend = Backend(folder, backend_arguments(args, None), args.threads, nofile=args.nofile).start()
    recorder, stop, sockets = Recorder(), threading.Event(), []
    log_before = backend.log.stat().st_size
    try:
        connect(backend, args.train_every)
        for _ in range(args.connections):
            try:
                connection = socket.create_connection(("127.0.0.1", backend.port), timeout=5)
                connection.setblocking(False)
                sockets.append(connection)
            except OSError:
                recorder.add("slow connect", 0.0, None)

        def trickle() -> None:
            while not stop.wait(1.0):
                for connection in list(sockets):
                    try:
                        connection.send(b"G")
                    except OSError:
                        sockets.remove(connection)
                        connection.close()
                        recorder.add("slow connection closed by server", 0.0, 0)

        threading.Thread(target=trickle, daemon=True).start()
        started = time.monotonic()
        while time.monotonic() - started < args.seconds:
            status, _, seconds = request(backend.port, "GET", "/health", timeout=10)
            recorder.add("/health during the attack", seconds, status)
            time.sleep(0.5)
        stop.set()
        health = backend.health()
        return {"connections": args.connections, "nofile": args.nofile, "seconds": args.seconds,
                "endpoints": recorder.summary(), "server": health and health.get("server"),
                "log_growth_kb": round((backend.log.stat().st_size - log_before) / 1024, 1),
                "ok": health is not None}  # fmt: skip
    finally:
        stop.set()
        for connection in sockets:
            connection.close()
        backend.stop()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def scenario_restart(args: argparse.Namespace, folder: Path) -> dict:
    backend = Backend(folder, backend_arguments(args, None), args.threads).start()
    connect(backend, args.train_every)
    train_rounds(backend, args.train_every)
    statuses, first_seconds = {}, []
    task = {"tasks": [{"id": 1, "data": {"text": "a lovely, fun film"}}]}
    for _ in range(args.restarts):
        backend.stop(signal.SIGKILL)
        backend.start(wait=False)
        while True:  # the moment the port opens
            try:
                socket.create_connection(("127.0.0.1", backend.port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.01)
        status, _, seconds = request(backend.port, "POST", "/predict", task)
        statuses[str(status)] = statuses.get(str(status), 0) + 1
        first_seconds.append(round(seconds, 3))
    backend.stop()
    return {"restarts": args.restarts, "first_predict_statuses": statuses, "first_predict_seconds": first_seconds,
            "ok": statuses == {"200": args.restarts}}  # fmt: skip


def scenario_large(args: argparse.Namespace, folder: Path) -> dict:
    backend = Backend(folder, backend_arguments(args, None), args.threads).start()
    try:
        connect(backend, args.train_every)
        train_rounds(backend, args.train_every)
        rng = random.Random(5)
        time.sleep(2)
        report = {"rss_before_mb": backend.rss_mb()}
        samples: list = []
        stop = threading.Event()
        sampler = threading.Thread(target=sample_rss, args=(backend, stop, samples, 0.2), daemon=True)
        sampler.start()
        text = (" ".join(rng.choice(FILLER) for _ in range(args.chars // 5)))[: args.chars]
        results: list = []

        def huge(i: int) -> None:
            results.append(request(backend.port, "POST", "/predict", {"tasks": [{"id": i, "data": {"text": text}}]}))

        threads = [threading.Thread(target=huge, args=(i,)) for i in range(args.concurrent)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(1800)
        report["long_text_requests"] = [{"status": s, "seconds": round(t, 2)} for s, _, t in results]
        tasks = [{"id": i, "data": {"text": sentence(rng, "Positive", i)}} for i in range(args.tasks)]
        status, _, seconds = request(backend.port, "POST", "/predict", {"tasks": tasks}, timeout=1800)
        report["many_tasks_request"] = {"tasks": args.tasks, "status": status, "seconds": round(seconds, 2)}
        time.sleep(5)
        stop.set()
        sampler.join(10)
        report["rss_peak_mb"] = max(mb for _, mb in samples)
        report["rss_after_mb"] = backend.rss_mb()
        report["ok"] = all(s == 200 for s, _, _ in results) and status == 200
        return report
    finally:
        backend.stop()


SCENARIOS = {"load": scenario_load, "kills": scenario_kills, "fuzz": scenario_fuzz, "faults": scenario_faults,
             "slowloris": scenario_slowloris, "restart": scenario_restart, "large": scenario_large}  # fmt: skip


def main(argv: list | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2, help="torch threads of the backend (default 2)")
    parser.add_argument("--factory", default="text", help="skcal serve --factory (default text)")
    parser.add_argument("--train-every", type=int, default=20)
    parser.add_argument("--annotators", type=int, default=8)
    parser.add_argument("--rate", type=float, default=1.0, help="webhooks a second per annotator")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="also write the JSON report here")
    parser.add_argument("--keep", action="store_true", help="keep the run folder (logs, state)")
    commands = parser.add_subparsers(dest="scenario", required=True)
    load = commands.add_parser("load")
    load.add_argument("--minutes", type=float, default=5.0)
    load.add_argument("--big-predict", type=int, default=0, help="tasks of the big /predict (0: none)")
    load.add_argument("--big-every", type=float, default=30.0)
    commands.add_parser("kills").add_argument("--kills", type=int, default=10)
    commands.add_parser("fuzz").add_argument("--bodies", type=int, default=2000)
    faults = commands.add_parser("faults")
    faults.add_argument("--disk-mb", type=int, default=16)
    faults.add_argument("--phase-seconds", type=float, default=20.0)
    slowloris = commands.add_parser("slowloris")
    slowloris.add_argument("--connections", type=int, default=1100)
    slowloris.add_argument("--nofile", type=int, default=1024)
    slowloris.add_argument("--seconds", type=float, default=30.0)
    commands.add_parser("restart").add_argument("--restarts", type=int, default=17)
    large = commands.add_parser("large")
    large.add_argument("--chars", type=int, default=20_000_000)
    large.add_argument("--concurrent", type=int, default=3)
    large.add_argument("--tasks", type=int, default=10_000)
    args = parser.parse_args(argv)
    folder = Path(tempfile.mkdtemp(prefix=f"skcal-serve-{args.scenario}-"))
    try:
        report = {"scenario": args.scenario, "factory": args.factory, "train_every": args.train_every,
                  **SCENARIOS[args.scenario](args, folder)}  # fmt: skip
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
        else:
            print(f"run folder: {folder}", file=sys.stderr)
    text = json.dumps(report, indent=1)
    print(text)
    if args.out:
        args.out.write_text(text)
    print(f"{args.scenario}: {'ok' if report['ok'] else 'FAILED'}")
    return 0 if report["ok"] else 1


def hashing_pipeline():  # noqa: ANN201 (a factory: --factory serve_load:hashing_pipeline, for quick runs)
    """Return a small, fast model for quick runs: hashed words and an MLP (no sentence encoder)."""
    import torch
    from sklearn.feature_extraction.text import HashingVectorizer
    from sklearn.pipeline import Pipeline

    from skcal import ContinualActiveClassifier
    from skcal.models import MLP

    classifier = ContinualActiveClassifier(MLP, module__hidden=(32,), optimizer=torch.optim.Adam, lr=1e-2,
                                           max_epochs=10, round_epochs=5, random_state=0, verbose=0)  # fmt: skip
    return Pipeline([("hash", HashingVectorizer(n_features=2**10, alternate_sign=False)), ("classifier", classifier)])


if __name__ == "__main__":
    sys.exit(main())
