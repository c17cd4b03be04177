"""A fuzz subset in CI: hostile bodies at /setup, /predict and /webhook never get a 5xx, and training goes on.

The bodies come from benchmarks/serve_load.py's :func:`fuzz_bodies` (the
full run sends 2,000 to the text model; its figures are in
docs/labelstudio.md); here 600 go to the tiny test pipeline behind the real
server of ``skcal serve``, trained first, so that a 503 "no model yet" cannot
hide in the counts. Before the fix, a labelling config with a lone surrogate
answered 500 (three of 1,000 fuzzed bodies).
"""

import importlib.util
import json
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from test_serve_backend import tiny_pipeline

from skcal.serve import LabelStudioBackend
from skcal.serve.server import ServerLimits, build_server

_spec = importlib.util.spec_from_file_location(
    "serve_load", Path(__file__).resolve().parent.parent / "benchmarks" / "serve_load.py"
)
serve_load = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(serve_load)


def post(url, raw):
    request = urllib.request.Request(url, data=raw, method="POST", headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def labels(start, n):
    return [
        serve_load.annotation_body("ANNOTATION_CREATED", i, i, ("Positive", "Negative")[i % 2], f"text number {i}")
        for i in range(start, start + n)
    ]


def test_fuzzed_bodies_never_get_a_server_error_and_training_goes_on(tmp_path):
    backend = LabelStudioBackend(tiny_pipeline, tmp_path / "state", train_every=4)
    server = build_server(backend, port=0, log_level="error", limits=ServerLimits())
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started:
            time.sleep(0.02)
        url = f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
        setup = json.dumps({"project": f"{serve_load.PROJECT}.1", "schema": serve_load.CONFIG}).encode()
        assert post(url + "/setup", setup)[0] == 200
        for body in labels(10**6, 4):
            assert post(url + "/webhook", json.dumps(body).encode())[0] == 201
        assert backend.wait_until_idle(60) and backend.campaign.n_rounds == 1
        statuses, server_errors = {}, []
        for path, raw in serve_load.fuzz_bodies(600, seed=1):
            status, answer = post(url + path, raw)
            statuses[status] = statuses.get(status, 0) + 1
            if status >= 500:
                server_errors.append((path, raw[:300], answer))
        assert not server_errors, server_errors[:3]
        assert set(statuses) <= {200, 201, 400, 409, 413, 422}, statuses
        assert statuses.get(422, 0) > 100 and statuses.get(400, 0) > 20  # the fuzz reaches the checks
        assert post(url + "/setup", setup)[0] == 200  # the same project, whatever the fuzz bound
        rounds = backend.campaign.n_rounds
        for body in labels(2 * 10**6, 4):
            assert post(url + "/webhook", json.dumps(body).encode())[0] == 201
        backend.webhook({"action": "START_TRAINING"})
        assert backend.wait_until_idle(60) and backend.campaign.n_rounds > rounds
    finally:
        server.should_exit = True
        thread.join(15)
        backend.close()
