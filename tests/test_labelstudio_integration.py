"""``skcal serve`` behind a real Label Studio 1.23 server, as a labelling team would use it.

Label Studio runs from the virtualenv scripts/install_labelstudio.sh makes
(SQLite in a temporary folder, on 127.0.0.1); the backend is the real
``skcal serve`` process with the built-in text model (all-MiniLM-L6-v2 +
MLP), basic auth, and a Label Studio token to refresh predictions. The
project holds 200 of Hutto & Gilbert's rated sentences; annotations go in
through Label Studio's REST API, as the labelling UI sends them. Where Label
Studio or the sentences are missing the test skips, and fails under
SKCAL_REQUIRE_DATA=1 (CI, after make venv installed both).
"""

import importlib.util
import json
import os
import time
from pathlib import Path

import numpy as np
import pytest

from skcal.datasets import get_data_home

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"
_spec = importlib.util.spec_from_file_location("labelstudio_local", SCRIPTS / "labelstudio_local.py")
local = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(local)

TRAIN_EVENTS = 10
N_TASKS = 200
AUTH = ("skcal-backend", "s3cret-password")
pytestmark = pytest.mark.slow


def _require(condition: bool, why: str) -> None:
    if not condition:
        if os.environ.get("SKCAL_REQUIRE_DATA"):
            pytest.fail(why)
        pytest.skip(why)


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    _require(local.label_studio_executable() is not None, f"no Label Studio in {local.label_studio_venv()}; "
             "run scripts/install_labelstudio.sh")  # fmt: skip
    _require((get_data_home() / "vaderSentiment-3.3.2.tar.gz").exists(), "no VADER sentences; run install_data.sh")
    server = local.LocalLabelStudio(tmp_path_factory.mktemp("label-studio"))
    try:
        yield server.start()
    finally:
        server.stop()


def _committed_ledger(state_dir: Path) -> dict:
    """The ledger of the backend's newest commit (read again if a commit replaces it meanwhile)."""
    for _ in range(50):
        pointer = (state_dir / "CURRENT").read_text().strip()
        try:
            return json.loads((state_dir / "commits" / pointer / "ledger.json").read_text())
        except FileNotFoundError:
            time.sleep(0.1)
    raise AssertionError(f"no readable commit in {state_dir}")


def _ls_labels(client, project) -> dict:
    """Every annotation Label Studio holds for the project, with its label."""
    labels = {}
    for task in client.annotated_tasks(str(project)):
        for annotation in task["annotations"]:
            labels[annotation["id"]] = annotation["result"][0]["value"]["choices"][0]
    return labels


def _binary_entropy(confidence: np.ndarray) -> np.ndarray:
    p = np.clip(confidence, 1e-12, 1 - 1e-12)
    return -(p * np.log(p) + (1 - p) * np.log(1 - p))


def test_label_studio_drives_cal_rounds_and_uncertainty_sampling(studio, tmp_path):
    timings = {"label_studio_start_s": round(studio.started_in, 1)}
    client = studio.client
    state = tmp_path / "skcal-state"
    arguments = ["--train-every", str(TRAIN_EVENTS), "--threads", "1", "--basic-auth", ":".join(AUTH),
                 "--label-studio-url", studio.url, "--label-studio-token", studio.token]  # fmt: skip
    backend = local.LocalBackend(state, arguments, auth_header=local.basic_auth_header(*AUTH)).start()
    timings["backend_start_s"] = round(backend.started_in, 1)
    try:
        tasks = local.sentiment_tasks(N_TASKS, seed=0)
        truth = {task["text"]: task["truth"] for task in tasks}
        project = local.create_project(client, "skcal integration", tasks)
        connection = local.connect_backend(client, project, backend.url, basic_auth=AUTH)
        # Label Studio reached /health and /setup with basic auth, and made the webhook
        assert connection["state"] == "CO", connection
        untrained = connection["model_version"]
        assert untrained.endswith("-untrained") and backend.health()["project"] == str(project)
        webhooks = client.request("GET", f"/api/webhooks?project={project}")
        assert [hook["url"] for hook in webhooks] == [backend.url + "/webhook"]

        def wait_round(n_rounds: int, what: str, refreshed: bool = True) -> dict:
            """Wait for the backend's round; with ``refreshed``, until Label Studio shows its predictions too."""
            started = time.monotonic()
            local.wait_for(lambda: backend.health()["rounds"] == n_rounds and not backend.health()["pending"],
                           240, what)  # fmt: skip
            version = backend.health()["model_version"]
            if refreshed:
                local.wait_for(lambda: client.request("GET", f"/api/projects/{project}")["model_version"] == version,
                               240, f"Label Studio to select {version}")  # fmt: skip
            timings[what] = round(time.monotonic() - started, 1)
            return backend.health()

        def label(task) -> int:
            return local.annotate(client, task["id"], truth[task["data"]["text"]])

        # 1. the first TRAIN_EVENTS annotations are the seed round; predictions with scores appear on every task
        listed = local.project_tasks(client, project)
        assert len(listed) == N_TASKS
        annotation_ids = [label(task) for task in listed[:TRAIN_EVENTS]]
        seed = wait_round(1, "seed round and refresh (s)")
        assert seed["labelled"] == TRAIN_EVENTS and seed["model_version"] != untrained
        queue = local.project_tasks(client, project, unlabelled_only=True, by_score=True)
        assert len(queue) == N_TASKS - TRAIN_EVENTS
        scores = np.array([task["predictions_score"] for task in queue], dtype=float)
        assert np.all(np.isfinite(scores)) and np.all((scores >= 0.5) & (scores <= 1)), scores[:5]
        assert np.all(np.diff(scores) >= 0), "the Data Manager does not sort by the prediction score"
        for task in queue[:20]:
            current = [p for p in task["predictions"] if p["model_version"] == seed["model_version"]]
            assert len(current) == 1 and current[0]["result"][0]["value"]["choices"][0] in ("Positive", "Negative")

        # 2. the lowest-scored tasks are the model's most uncertain: ask the model itself, outside Label Studio
        answer = backend.predict([{"id": task["id"], "data": task["data"]} for task in queue], local.SENTIMENT_CONFIG)
        confidence = np.array([result["score"] for result in answer["results"]])
        assert answer["model_version"] == seed["model_version"]
        np.testing.assert_allclose(scores, confidence, atol=1e-6)
        entropy = _binary_entropy(confidence)  # the model's uncertainty about each queued task
        assert entropy[:TRAIN_EVENTS].min() >= np.sort(entropy)[::-1][TRAIN_EVENTS - 1] - 1e-9

        # 3. label the queue's head (uncertainty sampling); after TRAIN_EVENTS more labels the version moves
        annotation_ids += [label(task) for task in queue[:TRAIN_EVENTS]]
        second = wait_round(2, "second round and refresh (s)")
        assert second["model_version"] not in (seed["model_version"], untrained)
        queue = local.project_tasks(client, project, unlabelled_only=True, by_score=True)
        assert all(any(p["model_version"] == second["model_version"] for p in task["predictions"]) for task in queue), (
            "some tasks have no prediction of the new model version"
        )
        predicted = {
            task["data"]["text"]: next(p for p in task["predictions"] if p["model_version"] == second["model_version"])
            for task in queue
        }
        accuracy = np.mean([p["result"][0]["value"]["choices"][0] == truth[text] for text, p in predicted.items()])
        timings["accuracy_after_20_labels"] = round(float(accuracy), 3)
        assert accuracy >= 0.55, f"the model predicts {accuracy:.0%} of the unlabelled sentences right (chance: 50%)"

        # 4. an updated annotation corrects the stored label; a deleted one leaves the replay memory
        corrected, deleted = annotation_ids[0], annotation_ids[1]
        old = _committed_ledger(state)["ledger"]["labels"][str(corrected)]
        new = "Negative" if old == "Positive" else "Positive"
        result = [{"from_name": "sentiment", "to_name": "text", "type": "choices", "value": {"choices": [new]}}]
        client.request("PATCH", f"/api/annotations/{corrected}", {"result": result})
        client.request("DELETE", f"/api/annotations/{deleted}")
        local.wait_for(lambda: backend.health()["labelled"] == 2 * TRAIN_EVENTS - 1, 60, "the deletion")
        local.wait_for(lambda: _committed_ledger(state)["ledger"]["labels"].get(str(corrected)) == new, 60, "relabel")
        ledger = _committed_ledger(state)["ledger"]
        assert str(deleted) not in ledger["labels"] and deleted not in ledger["order"]
        assert backend.health()["model_version"] == second["model_version"]  # corrections alone train nothing

        # 5. kill the backend after it acknowledged labels, label once while it is down, restart: nothing lost
        queue = local.project_tasks(client, project, unlabelled_only=True, by_score=True)
        before = backend.health()["journal_events"]
        for task in queue[:4]:
            label(task)
        assert backend.health()["journal_events"] == before + 4  # acknowledged (journaled before the answer)
        backend.kill()
        label(queue[4])  # Label Studio's webhook fails: the backend is down
        started = time.monotonic()
        backend.start()
        local.wait_for(lambda: backend.health()["pending"] == 5, 120, "the restarted backend to recover 5 labels")
        timings["restart_and_recover_s"] = round(time.monotonic() - started, 1)
        assert backend.health()["rounds"] == 2 and backend.health()["model_version"] == second["model_version"]
        for task in queue[5:10]:
            label(task)
        third = wait_round(3, "third round after restart (s)", refreshed=False)
        assert third["model_version"] != second["model_version"]
        held = _ls_labels(client, project)
        ledger = _committed_ledger(state)["ledger"]
        assert sorted(ledger["order"]) == sorted(held), "the campaign's labels are not Label Studio's annotations"
        assert {int(key): value for key, value in ledger["labels"].items()} == held
    finally:
        backend.stop()
        print("\nLabel Studio integration timings:", json.dumps(timings))


IMAGE_CONFIG = """<View>
  <Image name="photo" value="$image"/>
  <Choices name="colour" toName="photo" choice="single"><Choice value="Red"/><Choice value="Blue"/></Choices>
</View>"""


def _png(colour: str, seed: int) -> bytes:
    """A 32x32 PNG, mostly red or mostly blue, with noise."""
    import io

    from PIL import Image

    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 90, size=(32, 32, 3), dtype=np.uint8)
    pixels[..., 0 if colour == "red" else 2] += 150
    buffer = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(buffer, format="PNG")
    return buffer.getvalue()


def test_images_uploaded_into_label_studio_are_fetched_with_the_token(studio, tmp_path):
    """Image projects were tested with data URIs only; here the images are files uploaded into Label Studio."""
    client = studio.client
    project = client.request("POST", "/api/projects", {"title": "skcal images", "label_config": IMAGE_CONFIG})["id"]
    files = {f"{colour}-{i}.png": _png(colour, i) for i in range(12) for colour in ("red", "blue")}
    local.upload_files(studio, project, files)
    # and one task whose image is gone from Label Studio's storage
    client.request("POST", f"/api/projects/{project}/import", [{"image": f"/data/upload/{project}/gone-blue.png"}])
    tasks = local.project_tasks(client, project)
    assert len(tasks) == 25 and all(task["data"]["image"].startswith(f"/data/upload/{project}/") for task in tasks)
    state = tmp_path / "image-state"
    arguments = ["--factory", "image", "--train-every", "8", "--threads", "1",
                 "--label-studio-url", studio.url, "--label-studio-token", studio.token]  # fmt: skip
    backend = local.LocalBackend(state, arguments).start()
    try:
        assert local.connect_backend(client, project, backend.url)["state"] == "CO"

        def colour(task) -> str:
            return "Red" if "red" in task["data"]["image"].rsplit("/", 1)[-1] else "Blue"

        gone = next(task for task in tasks if "gone" in task["data"]["image"])
        uploaded = [task for task in tasks if task is not gone]
        for task in [gone, *uploaded[:7]]:  # the eighth label makes the seed round due
            local.annotate(client, task["id"], colour(task), control="colour", to_name="photo")
        health = local.wait_for(lambda: (h := backend.health())["rounds"] == 1 and h, 240, "the seed round")
        # the unfetchable image is set aside; the round trained on the 7 uploaded ones, fetched with the token
        assert health["labelled"] == 7 and health["set_aside"] == 1 and "images" in health["faults"]
        assert "gone-blue.png" in health["faults"]["images"]["error"]
        version = health["model_version"]
        local.wait_for(lambda: client.request("GET", f"/api/projects/{project}")["model_version"] == version,
                       240, "Label Studio to fetch the predictions")  # fmt: skip
        queue = local.project_tasks(client, project, unlabelled_only=True)
        predicted = [next(p for p in task["predictions"] if p["model_version"] == version) for task in queue]
        assert len(predicted) == len(uploaded) - 7 == 17
        pairs = zip(predicted, queue, strict=True)
        right = [prediction["result"][0]["value"]["choices"][0] == colour(task) for prediction, task in pairs]
        assert np.mean(right) >= 0.75, f"{np.mean(right):.0%} of the uploaded images predicted right"
        for task in uploaded[7:15]:  # the next round: the set-aside image is tried again, and still waits
            local.annotate(client, task["id"], colour(task), control="colour", to_name="photo")
        health = local.wait_for(lambda: (h := backend.health())["rounds"] == 2 and h, 240, "the second round")
        assert health["labelled"] == 15 and health["set_aside"] == 1
    finally:
        backend.stop()
