"""Large requests and images: /predict in bounded batches, unfetchable images set aside, concurrent fetches.

Images come from a stand-in for Label Studio's file server on 127.0.0.1
(``/data/upload/...`` paths fetched with the token), which counts how many
downloads run at once; the real Label Studio is in test_labelstudio_integration.
"""

import io
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
from PIL import Image
from sklearn.feature_extraction.text import HashingVectorizer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer
from test_serve_backend import CONFIG, labelled, send, tiny_pipeline

from skcal import ContinualActiveClassifier
from skcal.models import MLP
from skcal.serve import LabelStudioBackend
from skcal.serve.factories import ImageArrays
from skcal.serve.labelstudio import LabelStudioClient

IMAGE_CONFIG = """<View><Image name="photo" value="$image"/>
<Choices name="colour" toName="photo"><Choice value="Red"/><Choice value="Blue"/></Choices></View>"""


class WidestBatch(HashingVectorizer):
    """Hashed features that remember the most texts one call was given."""

    widest = 0

    def transform(self, X):
        type(self).widest = max(type(self).widest, len(X))
        return super().transform(X)


def widest_batch_pipeline():
    pipeline = tiny_pipeline()
    pipeline.steps[0] = ("hash", WidestBatch(n_features=64, alternate_sign=False))
    return pipeline


def test_a_large_predict_runs_in_bounded_batches_with_the_same_answers(tmp_path):
    """A 10,000-task /predict was featurised in one piece (and a 20M-character text tokenised whole)."""
    backend = LabelStudioBackend(widest_batch_pipeline, tmp_path / "state", train_every=4, predict_batch=64)
    try:
        backend.setup({"schema": CONFIG})
        send(backend, labelled(4))
        assert backend.wait_until_idle(30)
        texts = [f"good film number {i}" if i % 3 else f"sad awful day {i}" for i in range(2_000)]
        WidestBatch.widest = 0
        answer = backend.predict({"tasks": [{"id": i, "data": {"text": text}} for i, text in enumerate(texts)]})
        assert WidestBatch.widest == 64
        classifier = backend.campaign.classifier
        expected = classifier.predict_proba(HashingVectorizer(n_features=64, alternate_sign=False).transform(texts))
        assert len(answer["results"]) == 2_000
        np.testing.assert_allclose([result["score"] for result in answer["results"]], expected.max(axis=1), rtol=1e-5)
        labels = [result["result"][0]["value"]["choices"][0] for result in answer["results"]]
        assert labels == classifier.classes_[expected.argmax(axis=1)].tolist()
    finally:
        backend.close()


def png(colour):
    buffer = io.BytesIO()
    Image.new("RGB", (6, 6), colour).save(buffer, format="PNG")
    return buffer.getvalue()


class FakeFileServer:
    """Serves ``/data/upload/<name>.png`` (red or blue by name) after a delay; ``missing`` names answer 404."""

    def __init__(self, delay=0.15):
        self.missing, self.in_flight, self.most_in_flight, self.tokens = set(), 0, 0, set()
        lock, fake = threading.Lock(), self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's naming)
                if self.path.startswith("/api/"):  # the start-up comparison with Label Studio's annotations
                    body = b"[]"
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                with lock:
                    fake.in_flight += 1
                    fake.most_in_flight = max(fake.most_in_flight, fake.in_flight)
                    fake.tokens.add(self.headers.get("Authorization"))
                time.sleep(delay)
                with lock:
                    fake.in_flight -= 1
                name = self.path.rsplit("/", 1)[-1]
                if name in fake.missing:
                    self.send_response(404)
                    self.end_headers()
                    return
                body = png((255, 0, 0) if name.startswith("red") else (0, 0, 255))
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()


def image_pipeline():
    classifier = ContinualActiveClassifier(MLP, module__hidden=(8,), lr=0.1, max_epochs=5, round_epochs=3,
                                           batch_size=8, random_state=0, verbose=0)  # fmt: skip
    flatten = FunctionTransformer(lambda arrays: arrays.reshape(len(arrays), -1))
    return Pipeline([("pixels", ImageArrays(size=4)), ("flatten", flatten), ("classifier", classifier)])


def image_annotation(annotation_id, name):
    label = "Red" if name.startswith("red") else "Blue"
    region = {"from_name": "colour", "to_name": "photo", "type": "choices", "value": {"choices": [label]}}
    return {
        "action": "ANNOTATION_CREATED",
        "project": {"id": 3, "label_config": IMAGE_CONFIG},
        "annotation": {"id": annotation_id, "task": annotation_id, "result": [region]},
        "task": {"id": annotation_id, "data": {"image": f"/data/upload/3/{name}"}},
    }


@pytest.fixture
def files():
    server = FakeFileServer()
    yield server
    server.close()


def test_an_unfetchable_image_is_set_aside_without_blocking_rounds_and_trained_once_it_loads(tmp_path, files):
    """One unfetchable image once failed every round until its annotation was deleted."""
    client = LabelStudioClient(files.url, "legacy-token")
    backend = LabelStudioBackend(image_pipeline, tmp_path / "state", train_every=8, label_studio=client,
                                 refresh_predictions=False, retry_seconds=0.1)  # fmt: skip
    try:
        backend.setup({"project": "3.1", "schema": IMAGE_CONFIG})
        names = [f"{'red' if i % 2 else 'blue'}-{i}.png" for i in range(8)]
        files.missing.add(names[5])
        started = time.monotonic()
        for i, name in enumerate(names):
            backend.webhook(image_annotation(i, name))
        assert backend.wait_until_idle(60)
        took = time.monotonic() - started
        ledger = backend.campaign.ledger
        assert backend.campaign.n_rounds == 1 and sorted(ledger.order) == [0, 1, 2, 3, 4, 6, 7]
        assert list(ledger.set_aside) == [5] and "404" in ledger.set_aside[5]
        health = backend.health()
        assert health["set_aside"] == 1 and "could not be loaded" in health["faults"]["images"]["error"]
        # fetched concurrently, with a bound, and with the token
        assert 1 < files.most_in_flight <= backend.loader.workers, files.most_in_flight
        assert files.tokens == {"Token legacy-token"} and took < 8 * 0.15 + 5
        files.missing.clear()  # the image is back: the next round takes it
        for i in range(8, 16):
            backend.webhook(image_annotation(i, f"red-{i}.png"))
        assert backend.wait_until_idle(60)
        ledger = backend.campaign.ledger
        assert backend.campaign.n_rounds == 2 and sorted(ledger.order) == list(range(16)) and not ledger.pending
        assert backend.health()["faults"] == {} and backend.health()["set_aside"] == 0
        answer = backend.predict({"tasks": [{"id": 1, "data": {"image": "/data/upload/3/red-99.png"}}]})
        assert answer["results"][0]["model_version"].endswith("-round-1")
    finally:
        backend.close()


def test_a_set_aside_image_does_not_count_towards_the_next_round(tmp_path, files):
    client = LabelStudioClient(files.url, "legacy-token")
    backend = LabelStudioBackend(image_pipeline, tmp_path / "state", train_every=2, label_studio=client,
                                 refresh_predictions=False)  # fmt: skip
    try:
        backend.setup({"project": "3.1", "schema": IMAGE_CONFIG})
        files.missing.update({"blue-0.png", "red-1.png"})
        backend.webhook(image_annotation(0, "blue-0.png"))
        backend.webhook(image_annotation(1, "red-1.png"))
        assert backend.wait_until_idle(30)
        assert backend.campaign.n_rounds == 0 and sorted(backend.campaign.ledger.set_aside) == [0, 1]
        backend.webhook(image_annotation(2, "red-2.png"))  # 3 pending, 1 ready: no round yet
        assert backend.wait_until_idle(30) and backend.campaign.n_rounds == 0
        backend.webhook(image_annotation(3, "blue-3.png"))  # 2 ready: a round, which tries the others again
        assert backend.wait_until_idle(30)
        assert backend.campaign.n_rounds == 1 and sorted(backend.campaign.ledger.order) == [2, 3]
        assert json.dumps(sorted(backend.campaign.ledger.set_aside)) == "[0, 1]"
    finally:
        backend.close()
