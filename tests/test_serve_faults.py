"""Storage faults: a full journal, a read-only state folder, repeated failures; and a stable campaign id.

The faults are real where the test can make them so without privileges:
SQLite's own ``max_page_count`` gives the journal a genuine "database or disk
is full" (SQLITE_FULL), and ``query_only`` a genuine "attempt to write a
readonly database". A read-only commit folder is an ``OSError(EROFS)`` from
``os.mkdir`` (a root CI cannot make a folder read-only with permissions).
"""

import errno
import os
import threading
import time

import pytest
from sklearn.feature_extraction.text import HashingVectorizer
from test_serve_app import call
from test_serve_backend import CONFIG, FakeLabelStudio, created, labelled, ls_task, send, tiny_pipeline

from skcal.serve import Credentials, LabelStudioBackend, ProtocolError, create_app
from skcal.serve.backend import fingerprint
from skcal.serve.labelstudio import LabelStudioClient


@pytest.fixture
def make_backend(tmp_path):
    made = []

    def make(train_every=4, state=None, **kwargs):
        kwargs.setdefault("retry_seconds", 0.1)
        kwargs.setdefault("max_retry_seconds", 0.4)
        backend = LabelStudioBackend(
            kwargs.pop("factory", tiny_pipeline), state or tmp_path / "state", train_every=train_every, **kwargs
        )
        made.append(backend)
        return backend

    yield make
    for backend in made:
        backend.close(10)


def fill_the_journal(backend):
    """Give the journal's SQLite database no room to grow: a real SQLITE_FULL on the next page it needs."""
    connection = backend.journal._connection
    pages = connection.execute("PRAGMA page_count").fetchone()[0]
    connection.execute(f"PRAGMA max_page_count={pages}")


def free_the_journal(backend):
    backend.journal._connection.execute("PRAGMA max_page_count=1073741823")


def eventually(predicate, timeout=20.0):
    """Poll ``predicate`` every 0.05 s until it holds; return its last value."""
    deadline = threading.Event()
    timer = threading.Timer(timeout, deadline.set)
    timer.start()
    try:
        while not deadline.is_set():
            value = predicate()
            if value:
                return value
            deadline.wait(0.05)
        return predicate()
    finally:
        timer.cancel()


def settled_fingerprint(backend, timeout=20.0):
    """The backend's fingerprint once the worker has applied the events accepted so far (it stops changing)."""
    deadline = time.monotonic() + timeout
    previous = fingerprint(backend)
    while time.monotonic() < deadline:
        time.sleep(0.25)
        current = fingerprint(backend)
        if current == previous:
            return current
        previous = current
    return previous


def test_a_full_journal_answers_507_naming_the_error_and_heals_from_label_studio(make_backend):
    """Disk full once answered 500 'cannot rollback - no transaction is active'; the window's labels were lost."""
    fake = FakeLabelStudio()
    try:
        client = LabelStudioClient(fake.url, "t")
        backend = make_backend(train_every=1000, label_studio=client, refresh_predictions=False)
        backend.setup({"project": "3.1", "schema": CONFIG})
        sent, refused = {}, []
        for annotation_id, label, text in labelled(3):
            sent[annotation_id] = (label, text)
            backend.webhook(created(annotation_id, label, text))
        assert backend.wait_until_idle(30)
        fill_the_journal(backend)
        before = None
        for annotation_id, label, text in labelled(400, start=10):
            text = f"{text} {'x' * 300}"
            sent[annotation_id] = (label, text)
            try:
                backend.webhook(created(annotation_id, label, text))
            except ProtocolError as error:
                assert error.status == 507 and "database or disk is full" in error.message, error.message
                assert "come back from Label Studio's annotations" in error.message
                before = before or settled_fingerprint(backend)  # events accepted before the fault, applied
                refused.append(annotation_id)
                if len(refused) == 6:  # a window of failed webhooks
                    break
        assert len(refused) == 6 and fingerprint(backend) == before  # refused: nothing changed
        health = backend.health()
        assert "database or disk is full" in health["faults"]["journal"]["error"]
        assert health["labels_refused"] == 6 and health["faults"]["journal"]["count"] >= 6
        # Label Studio holds every annotation, those whose webhooks failed included
        fake.tasks = [ls_task(annotation_id, label, text) for annotation_id, (label, text) in sent.items()]
        free_the_journal(backend)  # space is back: the worker's probe sees it (with back-off) and reconciles
        assert eventually(lambda: set(backend.campaign.ledger.pending) == set(sent)), "the window did not come back"
        health = eventually(lambda: (lambda h: h if not h["faults"] else None)(backend.health()))
        assert health and health["faults"] == {} and [f["fault"] for f in health["recent_faults"]] == ["journal"]
        assert {key: item.label for key, item in backend.campaign.ledger.pending.items()} == {
            key: label for key, (label, _) in sent.items()
        }
    finally:
        fake.close()


def test_a_full_journal_over_http_is_a_507_and_without_label_studio_the_docs_way_is_said(make_backend):
    import uvicorn

    backend = make_backend(train_every=1000)
    backend.setup({"project": "3.1", "schema": CONFIG})
    app = create_app(backend, Credentials(token="t"))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started:
            thread.join(0.05)
        url = f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
        fill_the_journal(backend)
        statuses = []
        for annotation_id, label, text in labelled(200):
            status, answer = call(url + "/webhook", "POST", created(annotation_id, label, text + "x" * 300), "Bearer t")
            statuses.append(status)
            if status != 201:
                break
        assert status == 507 and answer["status"] == 507, answer
        assert "database or disk is full" in answer["error"] and "--label-studio-token" in answer["error"]
        status, health = call(url + "/health")
        assert status == 200 and "database or disk is full" in health["faults"]["journal"]["error"]
        free_the_journal(backend)
        status, answer = call(url + "/webhook", "POST", created(999, "Positive", "good"), "Bearer t")
        assert status == 201
        assert call(url + "/health")[1]["faults"] == {}
    finally:
        server.should_exit = True
        thread.join(10)


def test_a_read_only_journal_is_a_507_with_sqlites_message(make_backend):
    backend = make_backend(train_every=4)
    backend.setup({"project": "3.1", "schema": CONFIG})
    backend.journal._connection.execute("PRAGMA query_only=ON")
    before = fingerprint(backend)
    with pytest.raises(ProtocolError, match="readonly database") as caught:
        send(backend, labelled(1))
    assert caught.value.status == 507 and fingerprint(backend) == before
    with pytest.raises(ProtocolError, match="readonly database") as caught:  # a /setup that must store the config
        backend.setup({"project": "3.1", "schema": CONFIG.replace("Neutral", "Mixed")})
    assert caught.value.status == 507 and backend.config.classes == ("Positive", "Negative", "Neutral")
    backend.journal._connection.execute("PRAGMA query_only=OFF")
    send(backend, labelled(4))
    assert backend.wait_until_idle(30) and backend.campaign.n_rounds == 1


class CountingHash(HashingVectorizer):
    """The tiny pipeline's features, counting the rounds that trained (calls with more than one text)."""

    rounds = 0

    def transform(self, X):
        if len(X) > 1:
            type(self).rounds += 1
        return super().transform(X)


def counting_pipeline():
    pipeline = tiny_pipeline()
    pipeline.steps[0] = ("hash", CountingHash(n_features=64, alternate_sign=False))
    return pipeline


def test_a_read_only_state_folder_backs_off_and_never_retrains_the_round(make_backend, tmp_path, monkeypatch):
    """A read-only folder once retrained the round at every webhook: 165 failed rounds in 30 s."""
    state = tmp_path / "state"
    backend = make_backend(train_every=4, state=state, factory=counting_pipeline, max_retry_seconds=0.8)
    backend.setup({"project": "3.1", "schema": CONFIG})
    send(backend, labelled(4))
    assert backend.wait_until_idle(30) and backend.campaign.n_rounds == 1
    CountingHash.rounds = 0
    real_mkdir = os.mkdir

    def read_only(path, *args, **kwargs):
        if str(path).startswith(str(state / "commits")):
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        return real_mkdir(path, *args, **kwargs)

    monkeypatch.setattr(os, "mkdir", read_only)
    send(backend, labelled(4, start=10))  # a round is due; its commit fails
    for annotation_id, label, text in labelled(30, start=20):  # webhooks keep coming: each one woke a retry
        backend.webhook(created(annotation_id, label, text))
        threading.Event().wait(0.05)
    health = backend.health()
    assert "Read-only file system" in health["faults"]["storage"]["error"], health["faults"]
    assert health["failed_steps"] >= 2 and health["retry_in"] is not None
    assert health["faults"]["storage"]["count"] <= 8, "retries did not back off"  # 1.5 s of 0.1-0.8 s back-off
    assert backend.campaign.n_rounds == 1 and backend.model_version.endswith("-round-0")  # nothing published
    assert CountingHash.rounds == 1, "the round whose commit failed was trained again"  # retries only commit
    monkeypatch.setattr(os, "mkdir", real_mkdir)  # the folder is writable again
    assert eventually(lambda: not backend.health()["faults"])
    backend.webhook({"action": "START_TRAINING"})  # whatever waits, however the rounds fell
    assert backend.wait_until_idle(30)
    assert backend.health()["faults"] == {} and "storage" in [f["fault"] for f in backend.health()["recent_faults"]]
    ledger = backend.campaign.ledger
    assert sorted(ledger.order) == [0, 1, 2, 3, 10, 11, 12, 13] + list(range(20, 50))
    assert CountingHash.rounds <= 3  # the one committed late, then the labels that came meanwhile


def test_the_campaign_id_is_the_same_across_restarts_before_the_seed_round(make_backend, tmp_path):
    """The model version changed at every restart before the seed round committed."""
    state = tmp_path / "state"
    first = make_backend(train_every=4, state=state)
    version = first.setup({"project": "3.1", "schema": CONFIG})["model_version"]
    send(first, labelled(2))
    first.close()
    again = make_backend(train_every=4, state=state)
    assert again.model_version == version and again.setup({"schema": CONFIG})["model_version"] == version
    send(again, labelled(2, start=2))
    assert again.wait_until_idle(30)
    assert again.model_version == version.replace("-untrained", "-round-0")
    other = make_backend(train_every=4, state=tmp_path / "other")
    assert other.model_version != version  # a new state folder is a new campaign
