"""Screenshot Label Studio's Data Manager after ``skcal serve`` trained two rounds: the queue by prediction score.

    python scripts/labelstudio_screenshot.py [--out docs/images/labelstudio-queue.png]

Starts a local Label Studio and ``skcal serve`` (scripts/labelstudio_local.py),
creates a sentiment project of 200 real sentences, labels 10 (the seed
round), then the 10 lowest-scored (uncertainty sampling, round 2), opens a
Data Manager tab of the unlabelled tasks sorted by prediction score
ascending, most uncertain first, in headless Chromium, and saves a PNG.

Needs Debian's ``chromium`` and ``chromium-driver`` (``apt-get install chromium
chromium-driver``) and Selenium (``pip install 'selenium>=4.20,<4.40'``;
newer releases want a certifi newer than some mirrors have), besides
Label Studio (scripts/install_labelstudio.sh) and the VADER sentences
(scripts/install_data.sh).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import labelstudio_local as local

HIDDEN_COLUMNS = [
    "tasks:inner_id", "tasks:completed_at", "tasks:cancelled_annotations", "tasks:total_predictions",
    "tasks:annotators", "tasks:annotations_results", "tasks:annotations_ids", "tasks:predictions_model_versions",
    "tasks:file_upload", "tasks:storage_filename", "tasks:created_at", "tasks:updated_at", "tasks:updated_by",
    "tasks:avg_lead_time", "tasks:draft_exists", "tasks:data.truth", "tasks:total_annotations", "tasks:meta",
]  # fmt: skip


def label_two_rounds(studio, backend, project: int, truth: dict) -> str:
    """Label the seed set and then the 10 lowest-scored tasks; return the model version after round 2."""
    client = studio.client
    for round_index, tasks in enumerate((local.project_tasks(client, project)[:10], None)):
        if tasks is None:
            tasks = local.project_tasks(client, project, unlabelled_only=True, by_score=True)[:10]
        for task in tasks:
            local.annotate(client, task["id"], truth[task["data"]["text"]])
        local.wait_for(lambda n=round_index + 1: backend.health()["rounds"] == n and not backend.health()["pending"],
                       300, f"round {round_index}")  # fmt: skip
        version = backend.health()["model_version"]
        local.wait_for(lambda v=version: client.request("GET", f"/api/projects/{project}")["model_version"] == v,
                       300, "Label Studio to retrieve the predictions")  # fmt: skip
    return version


def queue_view(client, project: int) -> int:
    """Create a Data Manager tab: unlabelled tasks by prediction score, ascending; return its id."""
    unlabelled = {"filter": "filter:tasks:total_annotations", "operator": "equal", "type": "Number", "value": 0}
    data = {
        "title": "Most uncertain first",
        "ordering": ["tasks:predictions_score"],
        "filters": {"conjunction": "and", "items": [unlabelled]},
        "hiddenColumns": {"explore": HIDDEN_COLUMNS, "labeling": HIDDEN_COLUMNS},
    }
    return client.request("POST", "/api/dm/views", {"project": project, "data": data})["id"]


def screenshot(url: str, page: str, out: Path, width: int, height: int) -> None:
    """Log in with headless Chromium and save a screenshot of ``page``."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", f"--window-size={width},{height}", "--hide-scrollbars"):  # fmt: skip
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tempfile.mkdtemp(prefix='skcal-chromium-')}")
    driver = webdriver.Chrome(options=options, service=Service(shutil.which("chromedriver") or "/usr/bin/chromedriver"))
    try:
        driver.get(url + "/user/login")
        WebDriverWait(driver, 60).until(expected_conditions.presence_of_element_located((By.NAME, "email")))
        driver.find_element(By.NAME, "email").send_keys(local.USERNAME)
        driver.find_element(By.NAME, "password").send_keys(local.PASSWORD)
        driver.find_element(By.CSS_SELECTOR, "button[type=submit], input[type=submit]").click()
        WebDriverWait(driver, 60).until(lambda d: "/user/login" not in d.current_url)
        driver.get(url + page)
        WebDriverWait(driver, 120).until(
            expected_conditions.presence_of_element_located((By.XPATH, "//*[contains(text(), 'Most uncertain')]"))
        )
        time.sleep(8)  # the table fills in after the tab renders
        out.parent.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(out))
    finally:
        driver.quit()


def main() -> int:
    """Run the scenario and write the screenshot."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("docs/images/labelstudio-queue.png"))
    parser.add_argument("--width", type=int, default=1500)
    parser.add_argument("--height", type=int, default=900)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="skcal-screenshot-"))
    studio = local.LocalLabelStudio(folder / "label-studio").start()
    backend = local.LocalBackend(folder / "state", ["--train-every", "10", "--label-studio-url", studio.url,
                                                    "--label-studio-token", studio.token]).start()  # fmt: skip
    try:
        tasks = local.sentiment_tasks(200, seed=0)
        truth = {task["text"]: task["truth"] for task in tasks}
        project = local.create_project(studio.client, "Sentiment, labelled with skcal serve", tasks)
        local.connect_backend(studio.client, project, backend.url)
        version = label_two_rounds(studio, backend, project, truth)
        view = queue_view(studio.client, project)
        screenshot(studio.url, f"/projects/{project}/data?tab={view}", args.out, args.width, args.height)
        print(f"wrote {args.out}: project {project}, {version}, tab {view}")
    except BaseException:
        print(f"--- skcal serve's log ({backend.log}):", backend.log.read_text()[-3000:], sep="\n", file=sys.stderr)
        raise
    finally:
        backend.stop()
        studio.stop()
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
