"""Adversarial inputs found in review: each one once got a 500, or a 4xx that changed state, or a wrong label.

The backend is the real one on the tiny pipeline of ``test_serve_backend``.
"""

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from test_serve_backend import CONFIG, created, labelled, send, tiny_pipeline

from skcal.serve import LabelStudioBackend, ProtocolError
from skcal.serve import backend as backend_module
from skcal.serve.backend import fingerprint
from skcal.serve.campaign import CampaignStateError
from skcal.serve.labelconfig import parse_labelling_config
from skcal.serve.labelstudio import LabelStudioClient
from skcal.serve.media import MediaError, TaskValueLoader
from skcal.serve.protocol import parse_json_body, parse_webhook

OTHER_CONFIG = CONFIG.replace("Neutral", "Mixed")


@pytest.fixture
def make_backend(tmp_path):
    made = []

    def make(train_every=4, **kwargs):
        backend = LabelStudioBackend(tiny_pipeline, tmp_path / "state", train_every=train_every, retry_seconds=0.2,
                                     **kwargs)  # fmt: skip
        made.append(backend)
        return backend

    yield make
    for backend in made:
        backend.close()


def refused(backend, handler, body, status, message):
    """Call ``handler`` with ``body``; it must raise ``status`` and leave the whole state as it was."""
    before = fingerprint(backend), backend.journal.setting("label_config"), backend.journal.setting("project")
    with pytest.raises(ProtocolError, match=message) as caught:
        getattr(backend, handler)(body)
    assert caught.value.status == status
    assert backend.wait_until_idle(30)
    assert (fingerprint(backend), backend.journal.setting("label_config"), backend.journal.setting("project")) == before


def malformed_annotation():
    body = created(1, "Positive", "good")
    body["annotation"]["result"] = "Positive"
    return body


@pytest.mark.parametrize(
    "handler, body, status, message",
    [
        ("webhook", malformed_annotation(), 422, "'result' must be a list"),
        ("webhook", {"action": "NO_SUCH_ACTION", "project": {"id": 3, "label_config": CONFIG}}, 422,
         "unknown action"),
        ("predict", {"label_config": CONFIG, "project": "3.1", "tasks": [{"id": 1, "data": {}}]}, 422,
         "no data field 'text'"),
    ],
)  # fmt: skip
def test_a_refused_request_adopts_no_config_or_project(make_backend, handler, body, status, message):
    backend = make_backend()
    refused(backend, handler, body, status, message)
    assert backend.config is None and backend.journal.setting("label_config") is None


def test_ids_of_the_wrong_type_in_bulk_annotations_are_not_a_server_error(make_backend):
    backend = make_backend()
    backend.setup({"project": "3.1", "schema": CONFIG})
    region = {"from_name": "sentiment", "to_name": "text", "type": "choices", "value": {"choices": ["Positive"]}}
    for task_id in ([1], {"id": 1}):
        body = {
            "action": "ANNOTATIONS_CREATED",
            "project": {"id": 3},
            "annotation": [{"id": 1, "task": task_id, "result": [region]}],
            "task": [{"id": task_id, "data": {"text": "good"}}],
        }
        refused(backend, "webhook", body, 422, "'id' must be an integer")


def test_was_cancelled_must_be_a_boolean(make_backend):
    backend = make_backend(train_every=4)
    backend.setup({"project": "3.1", "schema": CONFIG})
    send(backend, labelled(4))
    assert backend.wait_until_idle(60)
    body = created(0, "Positive", "good great fine", action="ANNOTATION_UPDATED")
    body["annotation"]["was_cancelled"] = "false"  # a string is truthy: it once withdrew the label
    refused(backend, "webhook", body, 422, "'was_cancelled' must be true or false")


def test_deeply_nested_json_is_a_400():
    with pytest.raises(ProtocolError, match="nested too deeply") as caught:
        parse_json_body(b"[" * 200_000)
    assert caught.value.status == 400


def test_a_config_changed_while_a_webhook_is_checked_is_checked_again(make_backend, monkeypatch):
    """/setup replaces the config (no labels yet) between the webhook's check and its journal write."""
    backend = make_backend(train_every=4)
    backend.setup({"project": "3.1", "schema": CONFIG})
    calls = []

    def check_then_change_the_config(body, config):
        request = parse_webhook(body, config)
        if not calls:
            calls.append(backend.setup({"project": "3.1", "schema": OTHER_CONFIG}))
        return request

    monkeypatch.setattr(backend_module, "parse_webhook", check_then_change_the_config)
    with pytest.raises(ProtocolError, match="'Neutral' is not one of") as caught:
        send(backend, [(1, "Neutral", "so so")])
    assert caught.value.status == 422
    assert calls and backend.config.classes == ("Positive", "Negative", "Mixed")
    assert backend.journal.last_seq() == 0  # a label the campaign's classes lack never reaches the journal


def test_text_with_a_lone_surrogate_is_refused_before_it_can_block_training(make_backend):
    """JSON's "\\ud800" decodes to a str no tokenizer takes: journalled, it failed every later round."""
    backend = make_backend(train_every=4)
    backend.setup({"project": "3.1", "schema": CONFIG})
    refused(backend, "webhook", created(1, "Positive", "good \ud800 day"), 422, "not valid Unicode text")
    send(backend, labelled(4))
    assert backend.wait_until_idle(60) and backend.campaign.n_rounds == 1
    refused(backend, "predict", {"tasks": [{"id": 1, "data": {"text": "\udfff"}}]}, 422, "not valid Unicode text")
    assert backend.predict({"tasks": [{"id": 1, "data": {"text": "héllo 🙂 ünïcode"}}]})["results"]


@pytest.mark.parametrize(
    "schema",
    ["<View>\ud800</View>", CONFIG.replace('value="Neutral"', 'value="Neutral \udc00"')],
)
def test_a_labelling_config_with_a_lone_surrogate_is_a_422(make_backend, schema):
    """/setup with "<View>\\ud800</View>", or in a <Choice value>, answered 500 UnicodeEncodeError."""
    backend = make_backend()
    refused(backend, "setup", {"project": "3.1", "schema": schema}, 422, "not valid Unicode text")
    assert backend.config is None
    refused(backend, "predict", {"label_config": schema, "tasks": [{"data": {"text": "a"}}]}, 422, "not valid Unicode")
    refused(backend, "webhook", {**created(1, "Positive", "good"), "project": {"id": 3, "label_config": schema}}, 422,
            "not valid Unicode")  # fmt: skip


def serve_http(answer):
    """A local HTTP server whose GET handler is ``answer(handler)``; it records each request's Authorization."""
    seen = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            seen.append((self.path, self.headers.get("Authorization")))
            answer(self)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, seen


def test_the_label_studio_token_is_not_sent_on_a_redirect_elsewhere_and_fetch_errors_are_media_errors():
    def not_found(handler):
        handler.send_response(404)
        handler.end_headers()

    storage, storage_seen = serve_http(not_found)

    def redirect_to_storage(handler):
        if handler.path.startswith("/missing"):
            return not_found(handler)
        handler.send_response(302)  # Label Studio's presigned cloud-storage URLs are redirects like this
        handler.send_header("Location", f"http://127.0.0.1:{storage.server_port}/bucket/cat.png?signature=x")
        handler.end_headers()

    label_studio, label_studio_seen = serve_http(redirect_to_storage)
    try:
        config = parse_labelling_config(
            '<View><Image name="photo" value="$image"/><Choices name="kind" toName="photo">'
            '<Choice value="Cat"/><Choice value="Dog"/></Choices></View>'
        )
        loader = TaskValueLoader(LabelStudioClient(f"http://127.0.0.1:{label_studio.server_port}", "legacy-token"))
        for url in ("/tasks/1/presign/?fileuri=czM6Ly9iL2NhdC5wbmc=", "/missing.png", "/missing?next=http://x"):
            with pytest.raises(MediaError, match="cannot download"):  # a 422 for /predict, not a 500
                loader.load([url], config)
        assert label_studio_seen[0] == ("/tasks/1/presign/?fileuri=czM6Ly9iL2NhdC5wbmc=", "Token legacy-token")
        assert storage_seen == [("/bucket/cat.png?signature=x", None)]
    finally:
        label_studio.shutdown()
        storage.shutdown()


def test_a_second_backend_on_the_same_state_dir_is_refused(make_backend, tmp_path):
    """Two backends on one folder both trained every label and deleted each other's commits."""
    first = make_backend(train_every=2)
    first.setup({"project": "3.1", "schema": CONFIG})
    with pytest.raises(CampaignStateError, match="in use by another skcal serve backend"):
        LabelStudioBackend(tiny_pipeline, tmp_path / "state", train_every=2, start=False)
    send(first, labelled(2))
    assert first.wait_until_idle(60) and first.campaign.n_rounds == 1
    first.close()
    again = make_backend(train_every=2)  # released by close()
    assert again.wait_until_idle(60) and again.model_version == first.model_version
