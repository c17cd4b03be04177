"""The HTTP app over a real uvicorn server on 127.0.0.1: routes, JSON errors, credentials; and the CLI."""

import base64
import json
import threading
import time
import urllib.error
import urllib.request

import pytest
import uvicorn
from test_serve_backend import CONFIG, created, labelled, tiny_pipeline

from skcal.cli import main
from skcal.serve import Credentials, LabelStudioBackend, create_app
from skcal.serve.backend import fingerprint

AUTH = ("studio", "pa:ss word")
TOKEN = "tok-123"


def basic(user, password):
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.fixture
def server(tmp_path):
    backend = LabelStudioBackend(tiny_pipeline, tmp_path / "state", train_every=4)
    app = create_app(backend, Credentials(*AUTH, token=TOKEN))
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    running = uvicorn.Server(config)
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not running.started and time.monotonic() < deadline:
        time.sleep(0.05)
    port = running.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}", backend
    running.should_exit = True
    thread.join(10)
    backend.close()


def call(url, method="GET", body=None, authorization=None, raw=None):
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    if authorization:
        request.add_header("Authorization", authorization)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_label_studios_calls_over_http(server):
    url, backend = server
    status, health = call(url + "/health")  # open, as Label Studio's connection check needs
    assert status == 200 and health["status"] == "UP" and health["model_class"] == "ContinualActiveClassifier"
    auth = basic(*AUTH)
    status, answer = call(url + "/setup", "POST", {"project": "3.1", "schema": CONFIG}, auth)
    assert status == 200 and answer["model_version"].endswith("-untrained")
    for annotation_id, label, text in labelled(4):
        status, answer = call(url + "/webhook", "POST", created(annotation_id, label, text), auth)
        assert status == 201 and answer["status"] == "accepted"
    status, answer = call(url + "/webhook", "POST", {"action": "PROJECT_UPDATED", "project": {"id": 3}}, auth)
    assert status == 200 and answer["status"] == "ignored"
    assert backend.wait_until_idle(60)
    body = {"tasks": [{"id": 1, "data": {"text": "good fun"}}], "project": "3.1"}
    status, answer = call(url + "/predict", "POST", body, f"Bearer {TOKEN}")
    assert status == 200 and answer["results"][0]["model_version"].endswith("-round-0")
    assert call(url + "/metrics", authorization=f"Token {TOKEN}") == (200, {})


@pytest.mark.parametrize(
    "authorization",
    [None, basic("studio", "wrong"), basic("other", AUTH[1]), "Bearer nope", "Basic !!!", "Digest abc", TOKEN],
)
def test_requests_without_valid_credentials_are_refused_before_reading(server, authorization):
    url, backend = server
    before = fingerprint(backend)
    for route in ("/setup", "/predict", "/webhook"):
        status, answer = call(url + route, "POST", {"schema": CONFIG, "project": "3.1"}, authorization)
        assert status == 401 and "credentials" in answer["error"]
    assert call(url + "/metrics", authorization=authorization)[0] == 401
    assert fingerprint(backend) == before


def test_errors_are_json_with_a_4xx_status(server):
    url, backend = server
    auth = basic(*AUTH)
    before = fingerprint(backend)
    assert call(url + "/setup", "POST", raw=b"{oops", authorization=auth)[0] == 400
    status, answer = call(url + "/setup", "POST", raw=b"[]", authorization=auth)
    assert (status, answer["status"]) == (400, 400) and "JSON list" in answer["error"]
    status, answer = call(url + "/predict", "POST", {"tasks": [{"data": {}}]}, auth)
    assert status == 409 and "call /setup first" in answer["error"]
    assert call(url + "/nowhere", authorization=auth)[0] == 404
    assert call(url + "/predict", authorization=auth)[0] == 405
    assert fingerprint(backend) == before
    call(url + "/setup", "POST", {"schema": CONFIG}, auth)
    status, answer = call(url + "/predict", "POST", {"tasks": [{"data": {"text": "x"}}]}, auth)
    assert status == 503 and "no model yet" in answer["error"]


def test_credentials_are_checked_when_made():
    with pytest.raises(ValueError, match="both a user name and a password"):
        Credentials("user")
    with pytest.raises(ValueError, match="without ':'"):
        Credentials("a:b", "c")
    with pytest.raises(ValueError, match="token must not be empty"):
        Credentials(token=" ")
    assert Credentials().accepts(None) and not Credentials(token="t").accepts("Bearer")


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--basic-auth", "nocolon"], "USER:PASSWORD"),
        (["--factory", "no_such_module:build"], "argument --factory: factory 'no_such_module:build': cannot import"),
        (["--factory", "json:dumps.nope"], "has no attribute"),
        (["--factory", "text-and-more"], "not a built-in name"),
        (["--train-every", "0"], "must be at least 1"),
        (["--port", "70000"], "at most 65535"),
        (["--uncertainty", "variance"], "invalid choice"),
        (["--label-studio-url", "localhost:8080"], "argument --label-studio-url"),
        (["--label-studio-url", "http://localhost:8080"], "argument --label-studio-token: needed"),
        (["--header-timeout", "0"], "expected a positive number of seconds"),
        (["--shutdown-timeout", "soon"], "expected a number of seconds"),
        (["--max-connections", "0"], "argument --max-connections"),
    ],
)
def test_serve_arguments_are_checked_before_starting(tmp_path, capsys, arguments, message):
    with pytest.raises(SystemExit) as exit_:
        main(["serve", "--state-dir", str(tmp_path / "state"), *arguments])
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "state").exists()


def test_a_state_dir_for_another_model_is_an_argument_error(tmp_path, capsys):
    backend = LabelStudioBackend(tiny_pipeline, tmp_path / "state", train_every=2)
    backend.setup({"schema": CONFIG})
    for annotation_id, label, text in labelled(2):
        backend.webhook(created(annotation_id, label, text))
    assert backend.wait_until_idle(60)
    backend.close()
    with pytest.raises(SystemExit):
        main(["serve", "--state-dir", str(tmp_path / "state"), "--factory", "text"])
    assert "argument --state-dir" in capsys.readouterr().err
