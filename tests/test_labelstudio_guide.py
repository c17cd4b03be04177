"""The Label Studio guide's quick start works as written: its shell blocks, run against the real Label Studio.

docs/labelstudio.md marks the blocks of its headless session with
``<!-- guide-session -->``. They run here in one bash, as written, with only
what must differ on a test machine replaced: the ports (free ones), the
folders (temporary ones), the programs' paths (Label Studio's virtualenv,
this interpreter). Then the backend must have read the project's labelling
config through the connection the guide made.
"""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[1]
GUIDE = REPOSITORY / "docs" / "labelstudio.md"
sys.path.insert(0, str(REPOSITORY / "scripts"))
from labelstudio_local import EMPTY_DATABASE, free_port, label_studio_executable, label_studio_venv  # noqa: E402


def guide_session() -> str:
    """The guide's marked shell blocks, in order."""
    text = GUIDE.read_text()
    blocks = re.findall(r"<!-- guide-session -->\n```bash\n(.*?)```", text, flags=re.DOTALL)
    assert len(blocks) == 3, "the guide's headless session should be three marked bash blocks"
    return "\n".join(blocks)


def test_the_guide_marks_a_loopback_only_session():
    session = guide_session()
    assert "--internal-host 127.0.0.1" in session and "--no-browser" in session
    assert "--username" in session and "--password" in session and "--data-dir" in session
    assert "--host 127.0.0.1" in session  # skcal serve, on the loopback address too
    assert "localhost" not in GUIDE.read_text()


def test_the_guides_headless_session_runs_as_written(tmp_path):
    program = label_studio_executable()
    assert program is not None, f"no Label Studio in {label_studio_venv()}: make test installs it"
    studio_port, backend_port = free_port(), free_port()
    data_dir, state_dir = tmp_path / "label-studio-data", tmp_path / "sentiment-campaign"
    empty = label_studio_venv() / EMPTY_DATABASE / "label_studio.sqlite3"
    if empty.is_file():  # migrated by install_labelstudio.sh: saves the first start a minute of migrations
        data_dir.mkdir()
        shutil.copyfile(empty, data_dir / "label_studio.sqlite3")
    session = (
        guide_session()
        .replace("~/label-studio/bin/label-studio", str(program))
        .replace("~/label-studio-data", str(data_dir))
        .replace("sentiment-campaign", str(state_dir))
        .replace("skcal serve", f"{sys.executable} -m skcal serve")
        .replace("python3", sys.executable)
        .replace("8080", str(studio_port))
        .replace("9090", str(backend_port))
    )
    health = tmp_path / "health.json"
    script = "\n".join(
        [
            "set -euo pipefail",
            "trap 'kill $(jobs -p) 2>/dev/null; wait 2>/dev/null' EXIT",
            session,
            f"curl -sf http://127.0.0.1:{backend_port}/health > {health}",
        ]
    )
    environment = {
        **os.environ,
        "LABEL_STUDIO_BASE_DATA_DIR": str(data_dir),
        "LATEST_VERSION_CHECK": "false",  # an offline machine: no version check, no analytics
        "COLLECT_ANALYTICS": "false",
        "SENTRY_DSN": "",
        "FRONTEND_SENTRY_DSN": "",
    }
    try:
        done = subprocess.run(
            ["bash", "-c", script], cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=420
        )
    except subprocess.TimeoutExpired as error:
        pytest.fail(f"the guide's session did not finish in 420 s: {error.stderr!r}"[-4000:])
    assert done.returncode == 0, (done.stdout[-3000:], done.stderr[-3000:])
    state = json.loads(health.read_text())
    assert state["status"] == "UP"
    described = json.dumps(state.get("labelling"))
    assert "Positive" in described and "Negative" in described and "Neutral" in described, state
