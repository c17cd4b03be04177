"""The backend's handlers without HTTP: rounds, versions, corrections, restarts, bad input, concurrency.

The model is a real pipeline kept tiny: scikit-learn's stateless
HashingVectorizer (texts to 64 sparse features) and a
ContinualActiveClassifier with a 16-unit MLP.
"""

import threading
import time

import numpy as np
import pytest
from sklearn.feature_extraction.text import HashingVectorizer
from sklearn.pipeline import Pipeline

from skcal import ContinualActiveClassifier
from skcal.models import MLP
from skcal.serve import LabelStudioBackend, ProtocolError
from skcal.serve.backend import fingerprint
from skcal.serve.campaign import CampaignStateError

CONFIG = """<View><Text name="text" value="$text"/>
<Choices name="sentiment" toName="text"><Choice value="Positive"/><Choice value="Negative"/>
<Choice value="Neutral"/></Choices></View>"""
POSITIVE = ["good great fine", "great fun day", "lovely good film", "fine great work", "good lovely fun"]
NEGATIVE = ["bad awful day", "awful sad film", "terrible bad work", "sad terrible end", "bad sad awful"]


def tiny_pipeline(round_epochs=3, batch_size=8):
    classifier = ContinualActiveClassifier(
        MLP, module__hidden=(16,), lr=0.1, max_epochs=8, round_epochs=round_epochs, batch_size=batch_size,
        random_state=0, verbose=0,
    )  # fmt: skip
    return Pipeline([("hash", HashingVectorizer(n_features=64, alternate_sign=False)), ("classifier", classifier)])


def created(annotation_id, label, text, action="ANNOTATION_CREATED", project=3):
    region = {"from_name": "sentiment", "to_name": "text", "type": "choices", "value": {"choices": [label]}}
    return {
        "action": action,
        "project": {"id": project, "label_config": CONFIG},
        "annotation": {"id": annotation_id, "task": 100 + annotation_id, "result": [region]},
        "task": {"id": 100 + annotation_id, "data": {"text": text}},
    }


def labelled(n, start=0):
    """``n`` labelled texts, alternating classes."""
    texts = [(POSITIVE[i % 5], "Positive") if i % 2 == 0 else (NEGATIVE[i % 5], "Negative") for i in range(n)]
    return [(start + i, label, text) for i, (text, label) in enumerate(texts)]


@pytest.fixture
def make_backend(tmp_path):
    made = []

    def make(train_every=4, state=None, **kwargs):
        backend = LabelStudioBackend(
            kwargs.pop("factory", tiny_pipeline), state or tmp_path / "state", train_every=train_every,
            retry_seconds=0.2, **kwargs,
        )  # fmt: skip
        made.append(backend)
        return backend

    yield make
    for backend in made:
        backend.close()


def send(backend, items, action="ANNOTATION_CREATED"):
    for annotation_id, label, text in items:
        backend.webhook(created(annotation_id, label, text, action))


def history_labels(backend):
    classifier = backend.campaign.classifier
    return classifier.classes_[classifier.labelled_history_.y.numpy()].tolist()


def test_rounds_every_n_labels_and_the_model_version_moves(make_backend):
    backend = make_backend(train_every=4)
    versions = [backend.setup({"project": "3.1700000000", "schema": CONFIG})["model_version"]]
    assert versions[0].endswith("-untrained")
    with pytest.raises(ProtocolError, match="no model yet: the seed round runs once 4 labels") as caught:
        backend.predict({"tasks": [{"id": 1, "data": {"text": "good"}}]})
    assert caught.value.status == 503
    for batch in range(3):
        send(backend, labelled(3, start=4 * batch))
        assert backend.wait_until_idle(60)
        assert backend.campaign.n_rounds == batch  # 3 labels wait: no round yet
        send(backend, labelled(1, start=4 * batch + 3))
        assert backend.wait_until_idle(60)
        versions.append(backend.setup({"project": "3.1700000000", "schema": CONFIG})["model_version"])
    assert len(set(versions)) == 4 and versions[-1].endswith("-round-2")
    records = backend.campaign.classifier.rounds_
    assert [record["strategy"] for record in records] == ["seed", "er", "er"]
    assert [record["n_new"] for record in records] == [4, 4, 4]  # each round trains on its new labels only
    assert backend.campaign.classifier.classes_.tolist() == ["Negative", "Neutral", "Positive"]  # Neutral: declared


def test_predictions_carry_the_choice_and_the_confidence(make_backend):
    backend = make_backend(train_every=6)
    backend.setup({"project": "3.17", "schema": CONFIG})
    send(backend, labelled(6))
    assert backend.wait_until_idle(60)
    texts = ["good fun", "awful sad", "something else"]
    answer = backend.predict({"tasks": [{"id": i, "data": {"text": text}} for i, text in enumerate(texts)]})
    classifier = backend.campaign.classifier
    features = HashingVectorizer(n_features=64, alternate_sign=False).transform(texts)
    probabilities = classifier.predict_proba(features)
    assert answer["model_version"] == backend.model_version
    for result, row in zip(answer["results"], probabilities, strict=True):
        (region,) = result["result"]
        assert region["from_name"] == "sentiment" and region["to_name"] == "text" and region["type"] == "choices"
        assert region["value"]["choices"] == [classifier.classes_[row.argmax()]]
        assert result["score"] == pytest.approx(row.max()) and result["model_version"] == answer["model_version"]


def test_margin_and_entropy_scores(make_backend, tmp_path):
    texts = ["good fun", "awful", "maybe"]
    for mode in ("confidence", "margin", "entropy"):
        backend = make_backend(train_every=4, state=tmp_path / mode, score=mode)
        backend.setup({"schema": CONFIG})
        send(backend, labelled(4))
        assert backend.wait_until_idle(60)
        answer = backend.predict({"tasks": [{"data": {"text": text}} for text in texts]})
        scores = np.array([result["score"] for result in answer["results"]])
        features = HashingVectorizer(n_features=64, alternate_sign=False).transform(texts)
        p = backend.campaign.classifier.predict_proba(features)
        top = np.sort(p, axis=1)[:, ::-1]
        expected = {
            "confidence": top[:, 0],
            "margin": top[:, 0] - top[:, 1],
            "entropy": -(p * np.log(p)).sum(axis=1) / np.log(3),
        }[mode]
        np.testing.assert_allclose(scores, expected, rtol=1e-5)


def test_updates_correct_labels_and_deletes_leave_the_replay_memory(make_backend):
    backend = make_backend(train_every=4)
    backend.setup({"project": "3.17", "schema": CONFIG})
    send(backend, labelled(4))
    assert backend.wait_until_idle(60)
    assert history_labels(backend) == ["Positive", "Negative", "Positive", "Negative"]
    # a trained annotation updated: its stored label changes; deleted: it leaves the history
    backend.webhook(created(1, "Neutral", NEGATIVE[1], action="ANNOTATION_UPDATED"))
    backend.webhook({"action": "ANNOTATIONS_DELETED", "project": {"id": 3}, "annotations": [{"id": 2}]})
    # a pending annotation updated, then another created and deleted before any round
    send(backend, [(10, "Positive", "fine day")])
    backend.webhook(created(10, "Negative", "fine day", action="ANNOTATION_UPDATED"))
    send(backend, [(11, "Positive", "good")])
    backend.webhook({"action": "ANNOTATIONS_DELETED", "annotations": [{"id": 11}]})
    assert backend.wait_until_idle(60)
    ledger = backend.campaign.ledger
    assert ledger.order == [0, 1, 3] and history_labels(backend) == ["Positive", "Neutral", "Negative"]
    assert list(ledger.pending) == [10] and ledger.pending[10].label == "Negative"
    assert backend.campaign.classifier.rounds_[0]["n_forgotten"] == 1
    assert backend.model_version.endswith("-round-0")  # corrections alone train nothing
    send(backend, labelled(3, start=20))
    assert backend.wait_until_idle(60)
    assert backend.campaign.ledger.order == [0, 1, 3, 10, 20, 21, 22]
    assert history_labels(backend)[3] == "Negative" and backend.model_version.endswith("-round-1")


def test_a_cancelled_annotation_is_withdrawn(make_backend):
    backend = make_backend(train_every=4)
    backend.setup({"schema": CONFIG})
    send(backend, labelled(4))
    assert backend.wait_until_idle(60)  # the seed round takes every label waiting: send the fifth after it
    send(backend, labelled(1, start=4))
    assert backend.wait_until_idle(60)
    skipped = created(0, "Positive", POSITIVE[0], action="ANNOTATION_UPDATED")
    skipped["annotation"]["was_cancelled"] = True
    backend.webhook(skipped)
    assert backend.wait_until_idle(60)
    assert backend.campaign.ledger.order == [1, 2, 3] and list(backend.campaign.ledger.pending) == [4]


def test_withdrawing_every_label_starts_a_new_campaign(make_backend):
    backend = make_backend(train_every=2)
    backend.setup({"schema": CONFIG})
    send(backend, labelled(2))
    assert backend.wait_until_idle(60)
    first = backend.model_version
    backend.webhook({"action": "ANNOTATIONS_DELETED", "annotations": [{"id": 0}, {"id": 1}]})
    assert backend.wait_until_idle(60)
    assert backend.campaign.classifier is None and backend.model_version.endswith("-untrained")
    assert backend.model_version.split("-")[1] != first.split("-")[1]
    send(backend, labelled(2, start=5))
    assert backend.wait_until_idle(60)
    assert backend.campaign.ledger.order == [5, 6] and backend.model_version.endswith("-round-0")


def test_start_training_runs_a_round_on_fewer_labels(make_backend):
    backend = make_backend(train_every=50)
    backend.setup({"schema": CONFIG})
    send(backend, labelled(3))
    assert backend.wait_until_idle(60) and backend.campaign.classifier is None
    assert backend.webhook({"action": "START_TRAINING", "project": {"id": 3}})["status"] == "accepted"
    assert backend.wait_until_idle(60)
    assert backend.campaign.n_rounds == 1 and len(backend.campaign.ledger.order) == 3


def test_a_restart_resumes_and_replays_what_was_acknowledged(make_backend, tmp_path):
    state = tmp_path / "resumed"
    first = make_backend(train_every=4, state=state)
    first.setup({"project": "3.17", "schema": CONFIG})
    send(first, labelled(4))
    assert first.wait_until_idle(60)
    first.webhook(created(1, "Neutral", NEGATIVE[1], action="ANNOTATION_UPDATED"))
    first.webhook({"action": "ANNOTATIONS_DELETED", "annotations": [{"id": 2}]})
    assert first.wait_until_idle(60)
    committed = fingerprint(first)
    first.close()
    # a backend that acknowledges labels and dies before its worker runs (no worker at all here)
    dying = make_backend(train_every=4, state=state, start=False)
    assert fingerprint(dying)["weights"] == committed["weights"]
    send(dying, labelled(3, start=10))
    dying.close()
    resumed = make_backend(train_every=4, state=state)
    assert resumed.wait_until_idle(60)
    after = fingerprint(resumed)
    assert after["weights"] == committed["weights"] and after["history"] == committed["history"]
    assert after["order"] == [0, 1, 3] and after["labels"][1] == "Neutral"
    assert sorted(after["pending"]) == [10, 11, 12]  # acknowledged before the "crash": replayed from the journal
    assert after["model_version"] == committed["model_version"] and after["project"] == "3"
    send(resumed, labelled(1, start=13))
    assert resumed.wait_until_idle(60)
    assert resumed.campaign.ledger.order == [0, 1, 3, 10, 11, 12, 13]


def test_a_commit_left_half_written_is_ignored(make_backend, tmp_path):
    state = tmp_path / "crash"
    backend = make_backend(train_every=2, state=state)
    backend.setup({"schema": CONFIG})
    send(backend, labelled(2))
    assert backend.wait_until_idle(60)
    before = fingerprint(backend)
    backend.close()
    orphan = state / "commits" / "000099-abcdef"  # a crash after writing a commit, before CURRENT named it
    orphan.mkdir()
    (orphan / "ledger.json").write_text("{not json")
    again = make_backend(train_every=2, state=state)
    assert again.wait_until_idle(60)
    assert fingerprint(again)["weights"] == before["weights"] and not orphan.exists()


def test_a_commit_of_another_factory_is_refused_at_start(make_backend, tmp_path):
    state = tmp_path / "other"
    backend = make_backend(train_every=2, state=state)
    backend.setup({"schema": CONFIG})
    send(backend, labelled(2))
    assert backend.wait_until_idle(60)
    backend.close()

    def wider():
        pipeline = tiny_pipeline()
        pipeline.set_params(classifier__module__hidden=(32,))
        return pipeline

    with pytest.raises(CampaignStateError, match="cannot be loaded with this factory"):
        LabelStudioBackend(wider, state, start=False)
    assert (state / "CURRENT").is_file() and not (state / "corrupt").exists()  # a setting to fix: left alone


def _truncate_checkpoint(commit):
    checkpoint = commit / "checkpoint.pt"
    checkpoint.write_bytes(checkpoint.read_bytes()[:-10])


def _garble_ledger(commit):
    (commit / "ledger.json").write_text("{not json")


def _mislabel_ledger(commit):
    import json

    stored = json.loads((commit / "ledger.json").read_text())
    first = stored["ledger"]["order"][0]
    stored["ledger"]["labels"][str(first)] = "Neutral"
    (commit / "ledger.json").write_text(json.dumps(stored))


def _garble_pointer(commit):
    (commit.parent.parent / "CURRENT").write_bytes(b"\xff\xfe\x00")


@pytest.mark.parametrize("damage", [_truncate_checkpoint, _garble_ledger, _mislabel_ledger, _garble_pointer])
def test_a_corrupt_commit_is_moved_aside_and_the_campaign_rebuilt_from_the_journal(make_backend, tmp_path, damage):
    """A damaged commit once refused to start; the journal holds every label, so it is rebuilt from it."""
    state = tmp_path / "damaged"
    backend = make_backend(train_every=2, state=state)
    backend.setup({"project": "3.1", "schema": CONFIG})
    send(backend, labelled(4))
    assert backend.wait_until_idle(60)
    backend.webhook(created(1, "Neutral", NEGATIVE[1], action="ANNOTATION_UPDATED"))
    backend.webhook({"action": "ANNOTATIONS_DELETED", "annotations": [{"id": 2}]})
    send(backend, labelled(1, start=10))
    assert backend.wait_until_idle(60)
    ledger, old_version = backend.campaign.ledger, backend.model_version
    labels = {**ledger.labels, **{key: item.label for key, item in ledger.pending.items()}}  # trained or waiting
    assert labels == {0: "Positive", 1: "Neutral", 3: "Negative", 10: "Positive"} and backend.campaign.n_rounds >= 1
    backend.close()
    damage(next((state / "commits").iterdir()))
    rebuilt = make_backend(train_every=2, state=state)
    assert rebuilt.wait_until_idle(60)
    ledger = rebuilt.campaign.ledger
    assert dict(ledger.labels) == labels and not ledger.pending  # one round on every label
    assert history_labels(rebuilt) == [ledger.labels[annotation] for annotation in ledger.order]
    assert rebuilt.model_version.split("-")[1] != old_version.split("-")[1]  # a new model: a new campaign id
    (kept,) = (state / "corrupt").glob("*/*")  # the damaged commit is kept for inspection, not deleted
    assert (kept / "CURRENT").is_file()
    health = rebuilt.health()
    assert [fault["fault"] for fault in health["recent_faults"]] == ["commit"]
    assert "rebuilding the campaign from the journal" in health["recent_faults"][0]["error"]
    rebuilt.close()
    again = make_backend(train_every=2, state=state)  # and the rebuilt campaign is committed
    assert again.wait_until_idle(60) and again.model_version == rebuilt.model_version


BAD_REQUESTS = [
    ("setup", {"schema": "<View><Text name='t' value='$t'/></View>"}, 422, "no <Choices>"),
    ("setup", {"schema": CONFIG.replace("Neutral", "Mixed"), "project": "3.1"}, 409, "labelling config changed"),
    ("setup", {"schema": CONFIG, "project": "4.1"}, 409, "serves Label Studio project 3"),
    ("predict", {"tasks": []}, 422, "non-empty list"),
    ("predict", {"tasks": [{"id": 1, "data": {"txt": "a"}}]}, 422, "no data field 'text'"),
    ("predict", {"tasks": [{"id": 1, "data": {"text": "a"}}], "project": "9.1"}, 409, "project 9"),
    ("webhook", {"action": "ANNOTATION_CREATED", "annotation": {"id": 9, "result": "x"}}, 422, "must be a list"),
    ("webhook", created(9, "Maybe", "text"), 422, "label 'Maybe' is not one of"),
    ("webhook", {**created(9, "Positive", "text"), "project": {"id": 4}}, 409, "project 4"),
    ("webhook", {"action": "ANNOTATIONS_DELETED", "annotations": [{"id": "9"}]}, 422, "must be an integer"),
    ("webhook", {"action": "NOT_AN_ACTION"}, 422, "unknown action"),
    ("webhook", {"annotation": {}}, 400, "'action'"),
]


@pytest.mark.parametrize("handler, body, status, message", BAD_REQUESTS)
def test_bad_requests_change_nothing(make_backend, handler, body, status, message):
    backend = make_backend(train_every=4)
    backend.setup({"project": "3.17", "schema": CONFIG})
    send(backend, labelled(5))  # a trained model and a pending label
    assert backend.wait_until_idle(60)
    before = fingerprint(backend)
    with pytest.raises(ProtocolError, match=message) as caught:
        getattr(backend, handler)(body)
    assert caught.value.status == status
    assert backend.wait_until_idle(60)
    assert fingerprint(backend) == before


def test_a_failed_round_changes_nothing_and_is_retried(make_backend, tmp_path):
    calls = []

    def fragile():
        pipeline = tiny_pipeline()
        hashing = pipeline.steps[0][1]

        class FailsOnce(type(hashing)):
            def transform(self, X):
                if len(X) and not calls:
                    calls.append(1)
                    raise RuntimeError("the embedding service is down")
                return super().transform(X)

        pipeline.steps[0] = ("hash", FailsOnce(n_features=64, alternate_sign=False))
        return pipeline

    backend = make_backend(train_every=2, factory=fragile)
    backend.setup({"schema": CONFIG})
    send(backend, labelled(2))
    deadline = time.monotonic() + 60
    while backend.campaign.n_rounds == 0 and time.monotonic() < deadline:  # retried after retry_seconds
        time.sleep(0.05)
    assert backend.wait_until_idle(60)
    assert calls == [1] and backend.campaign.n_rounds == 1 and backend.health()["last_error"] is None
    assert backend.campaign.ledger.order == [0, 1] and len(backend.campaign.classifier.labelled_history_) == 2


def test_predict_answers_from_the_committed_model_while_a_round_trains(make_backend):
    backend = make_backend(train_every=4, factory=lambda: tiny_pipeline(round_epochs=300, batch_size=1))
    backend.setup({"schema": CONFIG})
    send(backend, labelled(4))
    assert backend.wait_until_idle(60)
    seed_version = backend.model_version
    body = {"tasks": [{"id": i, "data": {"text": text}} for i, text in enumerate(POSITIVE + NEGATIVE)]}
    before = backend.predict(body)
    send(backend, labelled(4, start=10))  # a long replay round starts
    during, slowest = [], 0.0
    while backend.model_version == seed_version:
        started = time.monotonic()
        answer = backend.predict(body)
        slowest = max(slowest, time.monotonic() - started)
        with backend.worker.condition:
            busy = backend.worker.busy
        if busy and backend.model_version == seed_version:
            during.append(answer)
    assert backend.wait_until_idle(120)
    assert during, "no prediction was answered while the round trained"
    assert all(answer == before for answer in during)  # the committed model, untouched by the round
    print(f"{len(during)} predictions during a {backend.campaign.classifier.rounds_[1]['train_seconds']:.2f} s "
          f"round, the slowest {slowest:.3f} s")  # fmt: skip
    assert slowest < backend.campaign.classifier.rounds_[1]["train_seconds"] / 2
    assert backend.predict(body)["model_version"] != seed_version


def test_concurrent_webhooks_are_all_trained_once(make_backend):
    backend = make_backend(train_every=5)
    backend.setup({"schema": CONFIG})
    items = labelled(40)
    errors = []

    def post(chunk):
        try:
            send(backend, chunk)
        except Exception as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=post, args=(items[i::4],)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # a round takes every label waiting (5 or more), so up to 4 may be left: train them too
    backend.webhook({"action": "START_TRAINING"})
    assert not errors and backend.wait_until_idle(120)
    ledger = backend.campaign.ledger
    assert sorted(ledger.order) == list(range(40)) and not ledger.pending
    assert len(backend.campaign.classifier.labelled_history_) == 40
    assert sum(record["n_new"] for record in backend.campaign.classifier.rounds_) == 40


def test_factories_that_do_not_end_in_a_cal_classifier_are_refused(tmp_path):
    backend = LabelStudioBackend(lambda: Pipeline([("hash", HashingVectorizer())]), tmp_path, start=False)
    with pytest.raises(ProtocolError, match="not a ContinualActiveClassifier") as caught:
        backend.setup({"schema": CONFIG})
    assert caught.value.status == 500 and backend.config is None
    backend.close()
    with pytest.raises(ValueError, match="train_every"):
        LabelStudioBackend(tiny_pipeline, tmp_path, train_every=0, start=False)


class FakeLabelStudio:
    """A stand-in for Label Studio's export endpoint (an external server), on 127.0.0.1."""

    def __init__(self):
        import http.server
        import json

        self.tasks, self.during_request = [], None
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's naming)
                if fake.during_request is not None:
                    fake.during_request()  # a webhook that arrives while Label Studio's list is being read
                body = json.dumps(fake.tasks).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):  # noqa: N802
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"{}")

            do_PATCH = do_POST

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()


def ls_task(annotation_id, label, text):
    payload = created(annotation_id, label, text)
    return {**payload["task"], "annotations": [payload["annotation"]]}


def test_a_restart_recovers_annotations_label_studio_sent_while_it_was_down(make_backend, tmp_path):
    from skcal.serve.labelstudio import LabelStudioClient

    fake = FakeLabelStudio()
    try:
        state = tmp_path / "resync"
        first = make_backend(train_every=10, state=state)
        first.setup({"project": "3.1", "schema": CONFIG})
        send(first, labelled(3))  # annotations 0, 1, 2
        assert first.wait_until_idle(60)
        first.close()
        # while the backend was down: 1 was deleted, 2 changed to Neutral, 5 created
        fake.tasks = [
            ls_task(0, "Positive", POSITIVE[0]),
            ls_task(2, "Neutral", POSITIVE[2]),
            ls_task(5, "Negative", "sad"),
        ]
        # and annotation 7 is created while the restarted backend reads Label Studio's list
        fake.during_request = lambda: resumed.webhook(created(7, "Positive", "fun"))
        resumed = make_backend(train_every=10, state=state, start=False, label_studio=LabelStudioClient(fake.url, "t"))
        resumed.start()
        assert resumed.wait_until_idle(60)
        pending = {key: item.label for key, item in resumed.campaign.ledger.pending.items()}
        assert pending == {0: "Positive", 2: "Neutral", 5: "Negative", 7: "Positive"}
    finally:
        fake.close()
