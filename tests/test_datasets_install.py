"""scripts/install_data.sh: idempotent, and says what to do where it cannot install."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from skcal.datasets import VADER_SDIST, get_data_home

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "install_data.sh"
VENV = Path(sys.executable).parent.parent


def run(*args, **env):
    environment = {**os.environ, "SKCAL_NO_APT": "1", **env}
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, env=environment, timeout=120)


def test_the_script_parses():
    assert subprocess.run(["bash", "-n", str(SCRIPT)]).returncode == 0


def test_nothing_is_downloaded_again(tmp_path):
    installed = get_data_home() / VADER_SDIST
    if not installed.exists():
        pytest.skip(f"No {installed} to copy; scripts/install_data.sh downloads it")
    shutil.copy2(installed, tmp_path / VADER_SDIST)
    stamp = (tmp_path / VADER_SDIST).stat().st_mtime_ns
    result = run(str(VENV), SKCAL_DATA=str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert f"{tmp_path / VADER_SDIST} already there" in result.stdout
    assert (tmp_path / VADER_SDIST).stat().st_mtime_ns == stamp and os.listdir(tmp_path) == [VADER_SDIST]
    assert "already installed" in result.stdout or "apt-get install" in result.stdout  # says what to do if missing


def test_a_wrong_venv_is_an_error_not_a_silent_skip(tmp_path):
    result = run(str(tmp_path / "no-venv"), SKCAL_DATA=str(tmp_path / "data"))
    assert result.returncode == 1 and "pass the virtualenv as the first argument" in result.stderr
