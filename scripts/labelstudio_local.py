"""A local Label Studio and a local ``skcal serve``, started as processes on 127.0.0.1.

Used by the integration tests (tests/test_labelstudio_integration.py) and by
scripts/labelstudio_screenshot.py; also a way to try the backend::

    python scripts/labelstudio_local.py --port 8080 --backend-port 9090

starts Label Studio (from the virtualenv scripts/install_labelstudio.sh made)
with a sentiment project of real sentences connected to ``skcal serve``, and
prints where to log in. Ctrl-C stops both.

Label Studio runs offline with SQLite in a folder of its own, with what a
backend on the same machine needs: ``ML_BLOCK_LOCAL_IP=false`` and
``SSRF_PROTECTION_ENABLED=false`` (Label Studio 1.23 refuses to call
private addresses otherwise), and a legacy API token for the scripted user
(``LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN=true``; legacy tokens are off by
default since 1.22, where the UI gives personal access tokens).
"""

from __future__ import annotations

import argparse
import base64
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import numpy as np

from skcal.serve.labelstudio import LabelStudioClient

REPOSITORY = Path(__file__).resolve().parent.parent
#: Where scripts/install_labelstudio.sh puts Label Studio; $SKCAL_LABEL_STUDIO_VENV overrides it.
DEFAULT_LABEL_STUDIO_VENV = REPOSITORY / ".venv-labelstudio"
#: The migrated empty database install_labelstudio.sh leaves in the virtualenv.
EMPTY_DATABASE = "skcal-empty-database"
SENTIMENT_CONFIG = """<View>
  <Text name="text" value="$text"/>
  <Choices name="sentiment" toName="text" choice="single" showInline="true">
    <Choice value="Positive"/>
    <Choice value="Negative"/>
  </Choices>
</View>"""
USERNAME = "skcal@example.com"
PASSWORD = "skcal-demo-password"


def label_studio_venv() -> Path:
    """Return the Label Studio virtualenv: ``$SKCAL_LABEL_STUDIO_VENV`` or ``.venv-labelstudio``."""
    return Path(os.environ.get("SKCAL_LABEL_STUDIO_VENV") or DEFAULT_LABEL_STUDIO_VENV)


def label_studio_executable() -> Path | None:
    """Return the ``label-studio`` program of that virtualenv, or None if it is not installed."""
    program = label_studio_venv() / "bin" / "label-studio"
    return program if program.is_file() else None


def free_port() -> int:
    """Return a TCP port free on 127.0.0.1 now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(predicate: Callable[[], object], timeout: float, what: str, interval: float = 0.5) -> object:
    """Poll ``predicate`` until it returns something truthy; raise TimeoutError naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = predicate()
        except (OSError, urllib.error.URLError, ConnectionError):
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up waiting {timeout:.0f} s for {what}")
        time.sleep(interval)


def launch(
    command: list[str],
    environment: dict,
    log_path: Path,
    name: str,
    url: str,
    healthy: Callable[[], bool],
    timeout: float,
) -> tuple[subprocess.Popen, float]:
    """Start ``command`` in its own session, logging to ``log_path``; wait until ``healthy()``.

    Returns the process and the seconds it took to come up; raises if it exits first or times out.
    """
    started = time.monotonic()
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env=environment, start_new_session=True
        )

    def up() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with {process.returncode}; see {log_path}")
        return healthy()

    wait_for(up, timeout, f"{name} on {url} (log: {log_path})")
    return process, time.monotonic() - started


def http_json(url: str, method: str = "GET", body: bytes | None = None, headers: dict | None = None) -> tuple:
    """Send one request; return ``(status, decoded JSON or text)`` for any status."""
    import json

    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            raw, status = response.read(), response.status
    except urllib.error.HTTPError as error:
        raw, status = error.read(), error.code
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode(errors="replace")


def _stop(process: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 30) -> None:
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, sig)
    except ProcessLookupError:
        return
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout)


class LocalLabelStudio:
    """A Label Studio server on 127.0.0.1 with SQLite in ``data_dir`` and one user with an API token.

    Parameters
    ----------
    data_dir : Path
    port : int, optional
        A free port by default.
    """

    def __init__(self, data_dir: Path, port: int | None = None):
        self.data_dir = Path(data_dir)
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.token = "skcal" + os.urandom(16).hex()
        self.process: subprocess.Popen | None = None
        self.log = self.data_dir / "label-studio.log"
        self.started_in: float | None = None

    def start(self, timeout: float = 300) -> LocalLabelStudio:
        """Start the server and wait until it answers (the first start migrates its database)."""
        program = label_studio_executable()
        if program is None:
            raise FileNotFoundError(f"no Label Studio in {label_studio_venv()}: run scripts/install_labelstudio.sh")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        database = self.data_dir / "label_studio.sqlite3"
        empty = label_studio_venv() / EMPTY_DATABASE / "label_studio.sqlite3"
        if empty.is_file() and not database.exists():
            shutil.copyfile(empty, database)  # migrated by install_labelstudio.sh: no minute of migrations
        environment = {
            **os.environ,
            "LABEL_STUDIO_BASE_DATA_DIR": str(self.data_dir),
            "LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN": "true",
            "ML_BLOCK_LOCAL_IP": "false",
            "SSRF_PROTECTION_ENABLED": "false",
            "LATEST_VERSION_CHECK": "false",
            "COLLECT_ANALYTICS": "false",
            "SENTRY_DSN": "",
            "FRONTEND_SENTRY_DSN": "",
            "ML_TIMEOUT_SETUP": "10",
            "WEBHOOK_TIMEOUT": "5",
        }
        command = [
            str(program), "start", "--no-browser", "--data-dir", str(self.data_dir),
            "--internal-host", "127.0.0.1", "--port", str(self.port),
            "--username", USERNAME, "--password", PASSWORD, "--user-token", self.token,
        ]  # fmt: skip
        self.process, self.started_in = launch(
            command, environment, self.log, "Label Studio", self.url,
            lambda: http_json(self.url + "/health")[0] == 200, timeout,
        )  # fmt: skip
        return self

    @property
    def client(self) -> LabelStudioClient:
        """A REST client with the user's legacy token."""
        return LabelStudioClient(self.url, self.token)

    def stop(self) -> None:
        """Stop the server."""
        if self.process is not None:
            _stop(self.process)


class LocalBackend:
    """``skcal serve`` as a process (``python -m skcal serve ...``) on 127.0.0.1.

    Parameters
    ----------
    state_dir : Path
    arguments : list of str
        More ``skcal serve`` arguments (``--train-every``, ``--label-studio-url``, ...).
    port : int, optional
    auth_header : str, optional
        An ``Authorization`` value for the health check, when the backend requires credentials.
    """

    def __init__(self, state_dir: Path, arguments: list, port: int | None = None, auth_header: str | None = None):
        self.state_dir = Path(state_dir)
        self.arguments = list(arguments)
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.auth_header = auth_header
        self.process: subprocess.Popen | None = None
        self.log = self.state_dir.parent / f"{self.state_dir.name}-serve.log"
        self.started_in: float | None = None

    def start(self, timeout: float = 180) -> LocalBackend:
        """Start the backend and wait until ``/health`` answers."""
        command = [sys.executable, "-m", "skcal", "serve", "--host", "127.0.0.1", "--port", str(self.port),
                   "--state-dir", str(self.state_dir), *self.arguments]  # fmt: skip
        environment = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
        self.process, self.started_in = launch(
            command, environment, self.log, "skcal serve", self.url, lambda: self.health() is not None, timeout
        )
        return self

    def health(self) -> dict | None:
        """Return ``/health``'s answer, or None if the backend does not answer."""
        status, body = http_json(self.url + "/health")
        return body if status == 200 else None

    def predict(self, tasks: list, label_config: str) -> dict:
        """Call ``/predict`` directly (as Label Studio would)."""
        import json

        headers = {"Content-Type": "application/json"}
        if self.auth_header:
            headers["Authorization"] = self.auth_header
        body = json.dumps({"tasks": tasks, "label_config": label_config}).encode()
        status, answer = http_json(self.url + "/predict", "POST", body, headers)
        if status != 200:
            raise RuntimeError(f"/predict answered {status}: {answer}")
        return answer

    def kill(self) -> None:
        """Kill the process at once (SIGKILL): no shutdown, no last commit."""
        if self.process is not None:
            _stop(self.process, signal.SIGKILL)

    def stop(self) -> None:
        """Stop the process (SIGTERM)."""
        if self.process is not None:
            _stop(self.process)


def basic_auth_header(user: str, password: str) -> str:
    """Return the ``Authorization`` value of HTTP basic auth."""
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def sentiment_tasks(n_tasks: int, seed: int = 0) -> list:
    """Return ``n_tasks`` tasks of Hutto & Gilbert's rated sentences: ``{"text", "truth"}``, half of each label.

    Needs the VADER data (scripts/install_data.sh).
    """
    from skcal.datasets import load_sentiment_sentences

    texts, labels, _, _ = load_sentiment_sentences()
    rng = np.random.default_rng(seed)
    short = np.array([len(text) <= 200 for text in texts])
    chosen = []
    for label in (1, 0):
        pool = np.flatnonzero((labels == label) & short)
        chosen += rng.choice(pool, n_tasks // 2 + (label == 1) * (n_tasks % 2), replace=False).tolist()
    rng.shuffle(chosen)
    return [{"text": texts[i], "truth": "Positive" if labels[i] == 1 else "Negative"} for i in chosen]


def create_project(client: LabelStudioClient, title: str, tasks: list, label_config: str = SENTIMENT_CONFIG) -> int:
    """Create a project with ``label_config`` and import ``tasks``; return its id."""
    project = client.request("POST", "/api/projects", {"title": title, "label_config": label_config})
    client.request("POST", f"/api/projects/{project['id']}/import", tasks)
    return project["id"]


def connect_backend(client: LabelStudioClient, project: int, url: str, basic_auth: tuple | None = None) -> dict:
    """Connect an ML backend to a project (Label Studio then creates its /webhook); return the connection.

    With ``basic_auth`` (user, password), the connection uses basic auth, and the webhook
    Label Studio created gets the same credentials as a header.
    """
    body = {"project": project, "url": url, "title": "skcal"}
    if basic_auth is not None:
        body.update(auth_method="BASIC_AUTH", basic_auth_user=basic_auth[0], basic_auth_pass=basic_auth[1])
    connection = client.request("POST", "/api/ml", body)
    if basic_auth is not None:
        for webhook in client.request("GET", f"/api/webhooks?project={project}"):
            if webhook["url"].startswith(url):
                header = {"Authorization": basic_auth_header(*basic_auth)}
                client.request("PATCH", f"/api/webhooks/{webhook['id']}", {"headers": header})
    return connection


def project_tasks(
    client: LabelStudioClient, project: int, unlabelled_only: bool = False, by_score: bool = False
) -> list:
    """Return the project's tasks as the Data Manager lists them (with predictions and scores)."""
    import json
    import urllib.parse

    query: dict = {}
    if unlabelled_only:
        item = {"filter": "filter:tasks:total_annotations", "operator": "equal", "type": "Number", "value": 0}
        query["filters"] = {"conjunction": "and", "items": [item]}
    if by_score:
        query["ordering"] = ["tasks:predictions_score"]
    tasks, page = [], 1
    while True:
        path = f"/api/tasks?project={project}&page={page}&page_size=100&fields=all"
        answer = client.request("GET", path + "&query=" + urllib.parse.quote(json.dumps(query)))
        tasks += answer["tasks"]
        if len(tasks) >= answer["total"] or not answer["tasks"]:
            return tasks
        page += 1


def annotate(
    client: LabelStudioClient, task_id: int, label: str, control: str = "sentiment", to_name: str = "text"
) -> int:
    """Submit an annotation choosing ``label`` (for the ``control`` over ``to_name``); return its id."""
    result = [{"from_name": control, "to_name": to_name, "type": "choices", "value": {"choices": [label]}}]
    return client.request("POST", f"/api/tasks/{task_id}/annotations", {"result": result})["id"]


def upload_files(studio: LocalLabelStudio, project: int, files: dict, content_type: str = "image/png") -> dict:
    """Upload files into a project, as the import dialog does (one task each, ``/data/upload/...`` URLs)."""
    boundary = "skcal-" + os.urandom(8).hex()
    parts = []
    for index, (name, content) in enumerate(files.items()):
        head = (f'--{boundary}\r\nContent-Disposition: form-data; name="file{index}"; filename="{name}"\r\n'
                f"Content-Type: {content_type}\r\n\r\n")  # fmt: skip
        parts.append(head.encode() + content + b"\r\n")
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}", "Authorization": f"Token {studio.token}"}
    status, answer = http_json(f"{studio.url}/api/projects/{project}/import", "POST", body, headers)
    if status != 201:
        raise RuntimeError(f"uploading {len(files)} file(s) answered {status}: {answer}")
    return answer


def main() -> int:
    """Start Label Studio and skcal serve with a sentiment project; wait for Ctrl-C."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=8080, help="Label Studio's port")
    parser.add_argument("--backend-port", type=int, default=9090)
    parser.add_argument("--tasks", type=int, default=300)
    parser.add_argument("--train-every", type=int, default=10)
    parser.add_argument("--folder", help="keep Label Studio's data and the backend's state here (default: temporary)")
    args = parser.parse_args()
    folder = Path(args.folder) if args.folder else Path(tempfile.mkdtemp(prefix="skcal-labelstudio-"))
    studio = LocalLabelStudio(folder / "label-studio", args.port).start()
    backend = LocalBackend(
        folder / "skcal-state",
        ["--train-every", str(args.train_every), "--label-studio-url", studio.url,
         "--label-studio-token", studio.token],
        port=args.backend_port,
    ).start()  # fmt: skip
    try:
        project = create_project(studio.client, "Sentiment (skcal)", sentiment_tasks(args.tasks))
        connect_backend(studio.client, project, backend.url)
        print(f"Label Studio: {studio.url}/projects/{project}  (log in as {USERNAME} / {PASSWORD})")
        print(f"skcal serve: {backend.url}/health; state in {backend.state_dir}. Ctrl-C stops both.")
        signal.signal(signal.SIGTERM, signal.default_int_handler)
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        backend.stop()
        studio.stop()
        if not args.folder:
            shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
